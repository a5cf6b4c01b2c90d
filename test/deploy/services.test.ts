// Class services and the environment API, with the behaviours of the original system's service
// tasks (SAGE): setup and context injection, idempotent start/stop, calls that succeed, fail or name
// a missing method, statistics, cleanup, concurrent calls — plus A → B → C calls between services.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { Environment } from "../../src/deploy/environment.js";
import type { AnyServeError } from "../../src/errors.js";
import { Service, serviceMethods } from "../../src/sdk/service.js";
import { KVService as SeedKV } from "../fixtures/seed/services.js";

const events: string[] = [];

class KVService extends Service {
  readonly #data = new Map<string, unknown>();
  readonly constructedWith: string;
  #setUp = false;
  constructor(readonly prefix = "") {
    super();
    this.constructedWith = this.ctx.serviceName; // ctx exists before the constructor body runs
  }
  setup() {
    this.#setUp = true;
    events.push(`setup:${this.ctx.serviceName}`);
  }
  stop() {
    events.push(`stop:${this.ctx.serviceName}`);
  }
  cleanup() {
    events.push(`cleanup:${this.ctx.serviceName}`);
  }
  get(key: string) {
    return this.#data.get(this.prefix + key) ?? null;
  }
  set(key: string, value: unknown) {
    this.#data.set(this.prefix + key, value);
    return true;
  }
  info() {
    return { setUp: this.#setUp, name: this.constructedWith, replica: this.ctx.replicaId };
  }
  fail(msg: string) {
    throw new Error(`kv failed: ${msg}`);
  }
  async slow(ms: number) {
    await sleep(ms);
    return "late";
  }
  list() {
    return [1, 2, 3];
  }
}

class C extends Service {
  process(x: number) {
    return x * 10;
  }
}
class B extends Service {
  async process(x: number) {
    return (await this.ctx.callService("c").process!(x + 1)) as number;
  }
}
class A extends Service {
  async process(x: number) {
    return { viaB: await this.ctx.callService("b").process!(x) };
  }
  async fanOut(xs: number[]) {
    return Promise.all(xs.map((x) => this.ctx.callService("b").process!(x)));
  }
}

test("a service class needs its context: constructing one outside anyserve is an error", () => {
  assert.throws(() => new KVService(), /service context exists only while anyserve constructs the service/);
  assert.deepEqual(serviceMethods(KVService as never).sort(), ["fail", "get", "info", "list", "set", "slow"]);
});

test("environment: register, start (idempotent), call, failures with codes, stop runs stop/cleanup", async () => {
  const env = new Environment();
  env.registerService("kv", KVService, "p:");
  env.registerServiceWithConfig("kv_async", KVService, { deployment: { threading_strategy: "async", thread_count: 8, replicas: 2 } });
  await env.start();
  await env.start();
  try {
    const kv = env.callService("kv");
    assert.deepEqual(await kv.info!(), { setUp: true, name: "kv", replica: "kv-0" });
    assert.equal(await kv.set!("a", { deep: [1, "x"] }), true);
    assert.deepEqual(await kv.get!("a"), { deep: [1, "x"] });
    assert.equal(await kv.get!("missing"), null);
    assert.deepEqual(await kv.list!(), [1, 2, 3]);
    await assert.rejects(kv.fail!("boom"), { code: "WORKER_ERROR", message: /kv failed: boom/ });
    await assert.rejects(
      kv.nope!(),
      (err: { code: string; message: string }) => err.code === "NO_MATCHING_CAPABILITY" && /method=nope/.test(err.message),
    );
    await assert.rejects(env.callService("kv", { timeout: 100 }).slow!(2000), { code: "DEADLINE_EXCEEDED" });
    // SAGE statistics after those calls: 7 reached kv (nope matched nothing), 2 failed.
    const stats = (await env.getServiceStatistics("kv"))!;
    assert.deepEqual(
      [stats.service_name, stats.service_type, stats.is_running, stats.request_count, stats.error_count, stats.errors_by_code],
      ["kv", "KVService", true, 7, 2, { WORKER_ERROR: 1, DEADLINE_EXCEEDED: 1 }],
    );
    assert.ok(Date.now() - Date.parse(stats.last_activity_time!) < 10_000, stats.last_activity_time!);
    assert.equal(await env.getServiceStatistics("nope"), undefined);
    // Concurrent calls all answered; two replicas share them.
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, _i) => env.callService("kv_async").info!().then((r) => (r as { replica: string }).replica)),
    );
    assert.equal(answers.length, 40);
    assert.deepEqual([...new Set(answers)].sort(), ["kv_async-0", "kv_async-1"]);
  } finally {
    await env.stop();
    await env.stop();
  }
  assert.ok(events.includes("setup:kv") && events.includes("stop:kv") && events.includes("cleanup:kv"), events.join(","));
  assert.ok(events.indexOf("stop:kv") < events.indexOf("cleanup:kv"));
});

test("three services calling each other A → B → C, synchronously and asynchronously", async () => {
  const env = new Environment();
  env.registerService("a", A).registerService("b", B).registerService("c", C);
  await env.start();
  try {
    assert.deepEqual(await env.callService("a").process!(1), { viaB: 20 });
    const pending = [env.callServiceAsync("a").process!(2), env.callServiceAsync("a").fanOut!([0, 1, 2])];
    const [one, many] = await Promise.all(pending);
    assert.deepEqual(one, { viaB: 30 });
    assert.deepEqual(many, [10, 20, 30]);
    const cancelled = env.callServiceAsync("kv_none").process!();
    cancelled.cancel();
    await assert.rejects(Promise.resolve(cancelled));
  } finally {
    await env.stop();
  }
});

test("registerServiceOnNodes on a node this machine is not → unschedulable with the reason", async () => {
  const env = new Environment();
  env.registerServiceOnNodes("remote_kv", KVService, { nodes: ["node-storage-01"], threads: 2 });
  env.registerService("local_kv", KVService);
  await env.start();
  try {
    assert.match(env.unschedulableReason("remote_kv")!, /target_nodes \[node-storage-01\] does not include this node 'local'/);
    assert.equal(await env.callService("local_kv").set!("k", 1), true);
  } finally {
    await env.stop();
  }
});

/** A stand-in `nvidia-smi` listing `n` GPUs first on PATH while `fn` runs (this machine has none). */
async function withGpus<T>(n: number, fn: () => Promise<T>): Promise<T> {
  const bin = mkdtempSync(path.join(tmpdir(), "anyserve-fake-smi-"));
  const smi = path.join(bin, "nvidia-smi");
  const lines = Array.from({ length: n }, (_, i) => `echo 'GPU ${i}: Stand-in GPU (UUID: GPU-000${i})'`);
  writeFileSync(smi, `#!/bin/sh\n${lines.join("\n")}\n`);
  chmodSync(smi, 0o755);
  const saved = process.env.PATH;
  process.env.PATH = `${bin}:${saved}`;
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
    rmSync(bin, { recursive: true, force: true });
  }
}

test("registerLocalServicePool runs a pool of worker threads (not the event loop), each with an instance keyed by the first argument", async () => {
  const env = new Environment();
  env.registerLocalServicePool("pool_kv", SeedKV as never, { poolSize: 2, maxThreads: 4 });
  await env.start();
  try {
    const kv = env.callService("pool_kv");
    const where = (await kv.whereAmI!()) as { thread: number; service: string; replica: string };
    assert.ok(where.thread > 0, "answered from a worker thread");
    assert.deepEqual([where.service, where.replica], ["pool_kv", "pool_kv-0"]);
    const replica = ((await (await fetch(`${env.url}/registry`)).json()) as { replicas: { http_endpoint: string }[] }).replicas[0]!;
    const w = (await (await fetch(`${replica.http_endpoint}/workers`)).json()) as {
      workers: { strategy: string; threads: number; max_threads: number; workers: { warm: number } };
    };
    assert.deepEqual([w.workers.strategy, w.workers.threads, w.workers.max_threads, w.workers.workers.warm], ["pool", 2, 4, 2]);
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    for (const k of keys) assert.equal(await kv.set!(k, k.toUpperCase()), true);
    assert.deepEqual(
      await Promise.all(keys.map((k) => kv.get!(k))),
      keys.map((k) => k.toUpperCase()),
    );
  } finally {
    await env.stop();
  }
});

test("registerLocalServicePool refuses a class the workers cannot load, and GPUs the node lacks, before anything starts", async () => {
  // KVService is defined in this test file, the program's main module: a worker would run the tests again.
  const local = new Environment();
  local.registerLocalServicePool("local_pool", KVService, { poolSize: 1 });
  await assert.rejects(local.start(), (err: AnyServeError) => {
    assert.equal(err.code, "CONFIG_INVALID");
    assert.match(err.message, /service 'local_pool': .*class KVService .*defined in the program's main module .*services\.test\.ts/);
    return true;
  });
  assert.equal(local.url, undefined, "a failed start leaves nothing running");

  const gpu = new Environment();
  gpu.registerLocalServicePool("llm", SeedKV as never, { poolSize: 1, gpuCount: 1 });
  await withGpus(0, () =>
    assert.rejects(gpu.start(), (err: AnyServeError) => {
      assert.equal(err.code, "DEPLOYMENT_DOES_NOT_FIT");
      assert.match(err.message, /llm: replica 0 needs 1 GPU\(s\); node 'local' has 0 in all/);
      return true;
    }),
  );
  assert.equal(gpu.url, undefined);
  // With a GPU on the node, the same registration starts.
  await withGpus(1, () => gpu.start());
  try {
    assert.equal(await gpu.callService("llm").set!("a", 1), true);
  } finally {
    await gpu.stop();
  }
});
