// Class services and the environment API, with the behaviours of the original system's service
// tasks (SAGE): setup and context injection, idempotent start/stop, calls that succeed, fail or name
// a missing method, statistics, cleanup, concurrent calls — plus A → B → C calls between services.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { Environment } from "../../src/deploy/environment.js";
import { Service, serviceMethods } from "../../src/sdk/service.js";

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
  env.registerLocalServicePool("pool_kv", KVService, { poolSize: 2, maxThreads: 4 });
  await env.start();
  try {
    assert.match(env.unschedulableReason("remote_kv")!, /target_nodes \[node-storage-01\] does not include this node 'local'/);
    assert.equal(await env.callService("pool_kv").set!("k", 1), true);
  } finally {
    await env.stop();
  }
});
