// The deployment file's fields, each observed from outside (issue 5): one `anyserve up`, one small
// service per field, and for each row the effect the field must have — not the value read back.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Cleanups, FIXTURES, startCli, waitFor } from "../helpers/processes.js";

const APP = path.join(FIXTURES, "config_app.ts:app");

const SERVICES = {
  queued: { app: APP, deployment: { threading_strategy: "single" }, performance: { queue_size: 2 } },
  timed: { app: APP, performance: { timeout: 0.3 } },
  serial: { app: APP, deployment: { threading_strategy: "single" } },
  parallel: { app: APP, deployment: { threading_strategy: "async", thread_count: 4 } },
  threads: { app: APP, deployment: { threading_strategy: "multi", thread_count: 2 } },
  batching: { app: APP, deployment: { threading_strategy: "async", thread_count: 64 }, performance: { batch_size: 8, batch_wait_ms: 50 } },
  gpu: { app: APP, deployment: { replicas: 2 }, resources: { gpu_count: 1 } },
  quiet: { app: APP, monitoring: { enable_metrics: false } },
  spread: {
    app: APP,
    deployment: { replicas: 3, load_balancing: "round_robin", threading_strategy: "async", thread_count: 8 },
    monitoring: { health_check_interval: 0.25 },
  },
  sleepy: { app: APP, deployment: { lazy: true } },
  far: { app: APP, deployment: { target: "remote_specific", target_nodes: ["gpu-node-7"] } },
};
const PROCESSES = 13; // replicas of every service but far, which is unschedulable: no process

interface Answer {
  status: number;
  code?: string;
  value?: unknown;
  ms: number;
}

async function call(url: string, type: string, ms?: number): Promise<Answer> {
  const t0 = performance.now();
  const inputs = [{ name: "ms", datatype: "BYTES", shape: [1], data: [String(ms ?? 0)] }];
  const res = await fetch(`${url}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-capability-type": type },
    body: JSON.stringify({ inputs }),
  });
  const body = (await res.json()) as { code?: string; outputs?: { data: unknown[] }[] };
  return {
    status: res.status,
    ms: performance.now() - t0,
    ...(body.code ? { code: body.code } : {}),
    ...(body.outputs ? { value: body.outputs[0]!.data[0] } : {}),
  };
}

/** Through the API server, to the one service offering `{type: whoami, svc: service}`. */
async function viaGateway(url: string, service: string): Promise<Answer> {
  const res = await fetch(`${url}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-capability-type": "whoami", "x-capability-svc": service },
    body: JSON.stringify({ inputs: [{ name: "x", datatype: "BYTES", shape: [1], data: ["x"] }] }),
  });
  const body = (await res.json()) as { code?: string; outputs?: { data: unknown[] }[] };
  return {
    status: res.status,
    ms: 0,
    ...(body.code ? { code: body.code } : {}),
    ...(body.outputs ? { value: body.outputs[0]!.data[0] } : {}),
  };
}

/** Routes a request to one service's replica directly (types are shared by all services). */
async function callService(d: Deployed, service: string, type: string, ms?: number): Promise<Answer> {
  const replica = (await d.registry()).find((e) => e.service === service)!;
  return call(replica.http_endpoint, type, ms);
}

interface Entry {
  replica_id: string;
  service: string;
  http_endpoint: string;
  states: string[];
}
interface Deployed {
  url: string;
  registry(): Promise<Entry[]>;
}

describe("each deployment field, observed", () => {
  const cleanups = new Cleanups();
  let d: Deployed;

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "anyserve-fields-"));
    cleanups.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "anyserve.yaml");
    writeFileSync(file, JSON.stringify({ api_server: { port: 0, grpc_port: null }, node: { gpu_count: 2 }, services: SERVICES }));
    const up = await startCli(cleanups, ["up", file], {}, 180_000);
    const url = up.ready.url!;
    d = { url, registry: async () => ((await (await fetch(`${url}/registry`)).json()) as { replicas: Entry[] }).replicas };
    await waitFor(`${PROCESSES} replicas registered`, async () => (await d.registry()).length === PROCESSES, 120_000);
  });
  after(() => cleanups.run());

  test("performance.queue_size: 2 → with one running and 2 queued, the next is 503 QUEUE_FULL at once", async () => {
    const replica = (await d.registry()).find((e) => e.service === "queued")!.http_endpoint;
    const running = [call(replica, "hold", 1500), call(replica, "hold", 1500), call(replica, "hold", 1500)];
    await waitFor(
      "1 running + 2 queued",
      async () => {
        const caps = (
          (await (await fetch(`${replica}/workers`)).json()) as {
            capabilities: { capability: { type: string }; queued: number; in_flight: number }[];
          }
        ).capabilities;
        const hold = caps.find((c) => c.capability.type === "hold")!;
        return hold.in_flight + hold.queued === 3;
      },
      10_000,
      10,
    );
    const refused = await call(replica, "hold", 0);
    assert.deepEqual([refused.status, refused.code], [503, "QUEUE_FULL"]);
    // At once: a request that waited for a slot would take 1.5 s at least (the running hold);
    // the margin below that is for a loaded machine.
    assert.ok(refused.ms < 1_000, `refused in ${refused.ms} ms`);
    assert.deepEqual(
      (await Promise.all(running)).map((a) => a.status),
      [200, 200, 200],
    );
  });

  test("performance.timeout: 0.3 → a 2 s request is 504 DEADLINE_EXCEEDED after ~300 ms", async () => {
    const a = await callService(d, "timed", "hold", 2000);
    assert.deepEqual([a.status, a.code], [504, "DEADLINE_EXCEEDED"]);
    assert.ok(a.ms >= 250 && a.ms < 1500, `${a.ms} ms`);
  });

  test("threading_strategy single vs async × 4 vs multi × 2: measured concurrency", async () => {
    const wall = async (service: string, n: number): Promise<number> => {
      const t0 = performance.now();
      const answers = await Promise.all(Array.from({ length: n }, () => callService(d, service, "hold", 400)));
      assert.ok(answers.every((a) => a.status === 200));
      return performance.now() - t0;
    };
    const serial = await wall("serial", 2);
    const parallel = await wall("parallel", 4);
    const threads = await wall("threads", 2);
    // One at a time takes 800 ms at least; together 400 ms and the hops — the bound between them
    // leaves 300 ms for a loaded machine.
    assert.ok(serial >= 780, `single ran 2 × 400 ms in ${serial} ms: one at a time`);
    assert.ok(parallel < 700, `async × 4 ran 4 × 400 ms in ${parallel} ms: together`);
    assert.ok(threads < 700, `multi × 2 ran 2 × 400 ms in ${threads} ms: together`);
  });

  test("performance.batch_size: 8 → 32 concurrent requests reach the handler in batches of at most 8", async () => {
    const before = Number((await callService(d, "batching", "batch_calls")).value);
    const answers = await Promise.all(Array.from({ length: 32 }, () => callService(d, "batching", "batched")));
    const sizes = answers.map((a) => Number(a.value));
    assert.ok(
      sizes.every((s) => s >= 1 && s <= 8),
      sizes.join(","),
    );
    const calls = Number((await callService(d, "batching", "batch_calls")).value) - before;
    assert.ok(calls >= 4 && calls <= 16, `${calls} handler calls for 32 requests`);
  });

  test("resources.gpu_count: 1 × replicas: 2 → each replica has its own CUDA_VISIBLE_DEVICES", async () => {
    const gpus = await Promise.all((await d.registry()).filter((e) => e.service === "gpu").map((e) => call(e.http_endpoint, "gpus")));
    assert.deepEqual(gpus.map((g) => g.value).sort(), ["0", "1"]);
  });

  test("monitoring.enable_metrics: false → no metrics for the service (replica and gateway)", async () => {
    const quiet = (await d.registry()).find((e) => e.service === "quiet")!;
    assert.equal((await fetch(`${quiet.http_endpoint}/metrics`)).status, 404);
    const loud = (await d.registry()).find((e) => e.service === "serial")!;
    assert.equal((await fetch(`${loud.http_endpoint}/metrics`)).status, 200);
    assert.equal((await viaGateway(d.url, "quiet")).status, 200);
    assert.equal((await viaGateway(d.url, "serial")).status, 200);
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    assert.match(metrics, /anyserve_gateway_requests_total\{service="serial",capability="svc=serial,type=whoami",code="OK"\} 1/);
    assert.doesNotMatch(metrics, /service="quiet"/);
  });

  test("replicas: 3 + load_balancing: round_robin → 3 processes sharing 30 requests 10/10/10; health_check_interval sets the probe period", async () => {
    const deployment = (await (await fetch(`${d.url}/api/deployment`)).json()) as { services: { spread: { replicas: { pid: number }[] } } };
    assert.equal(new Set(deployment.services.spread.replicas.map((r) => r.pid)).size, 3);
    const answers = await Promise.all(Array.from({ length: 30 }, () => viaGateway(d.url, "spread")));
    const counts: Record<string, number> = {};
    for (const a of answers) counts[String(a.value)] = (counts[String(a.value)] ?? 0) + 1;
    assert.deepEqual(counts, { "spread-0": 10, "spread-1": 10, "spread-2": 10 });
    const view = (await (await fetch(`${d.url}/api/services/spread`)).json()) as {
      policy: { load_balancing: string; health_check_interval_ms: number };
    };
    assert.deepEqual([view.policy.load_balancing, view.policy.health_check_interval_ms], ["round_robin", 250]);
  });

  test("deployment.lazy: true → registered cold, warm after its first request", async () => {
    const entry = async () => (await d.registry()).find((e) => e.service === "sleepy")!;
    assert.ok(
      (await entry()).states.every((s) => s === "cold"),
      (await entry()).states.join(","),
    );
    assert.equal((await callService(d, "sleepy", "gpus")).status, 200);
    await waitFor("warm after first use", async () => (await entry()).states.includes("warm"), 15_000);
  });

  test("deployment.target_nodes this node is not → unschedulable with the reason, nothing started", async () => {
    const view = (await (await fetch(`${d.url}/api/services/far`)).json()) as { status: string; reason: string; replicas: unknown[] };
    assert.equal(view.status, "unschedulable");
    assert.match(view.reason, /gpu-node-7/);
    assert.deepEqual(view.replicas, []);
  });
});
