// Autoscaling with real processes: `anyserve up` with an autoscaled service (replica processes,
// the API server's load probes, the controller's decisions) under a real closed-loop load over
// HTTP. Delays are short config values so each test runs in seconds; every wait polls the
// management API with a deadline. The app holds each request 100 ms and runs one at a time per
// replica (test/fixtures/autoscale_app.ts), so 6 clients keep 6 requests ongoing: 3 replicas at
// the target of 2.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { promisify } from "node:util";
import type { AutoscalingView } from "../../src/gateway/status.js";
import { ClosedLoad, countBy } from "../helpers/load.js";
import { BIN, FIXTURES, startCli, waitFor } from "../helpers/processes.js";

const APP = path.join(FIXTURES, "autoscale_app.ts:app");
const WORK = { "x-capability-type": "work" };

async function up(t: TestContext, services: Record<string, unknown>): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-autoscale-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "anyserve.yaml");
  writeFileSync(file, JSON.stringify({ api_server: { port: 0, grpc_port: null }, services }));
  const proc = await startCli(t, ["up", file], { WORK_MS: "100" }, 120_000);
  return proc.ready.url!;
}

async function autoscaling(url: string, service: string): Promise<AutoscalingView & { status: string }> {
  const view = (await (await fetch(`${url}/api/services/${service}`)).json()) as { status: string; autoscaling: AutoscalingView };
  return { ...view.autoscaling, status: view.status };
}

test("min 1, max 4: a load needing 3 replicas gets 3 within the upscale delay and a start, then 1 after the downscale delay; no request fails", async (t) => {
  const url = await up(t, {
    work: {
      app: APP,
      autoscaling: {
        min_replicas: 1,
        max_replicas: 4,
        target_ongoing_requests: 2,
        metrics_interval_s: 0.25,
        look_back_period_s: 1,
        upscale_delay_s: 1,
        downscale_delay_s: 3,
      },
    },
  });
  const first = await autoscaling(url, "work");
  assert.deepEqual([first.desired, first.running, first.min_replicas, first.max_replicas], [1, 1, 1, 4]);

  const load = new ClosedLoad(url, WORK);
  t.after(() => load.stop());
  const t0 = Date.now();
  load.set(6);
  // Up: the look-back window fills (1 s), the upscale delay (1 s), a replica process starts (~1-2 s
  // alone, more on a busy machine): 30 s is the bound of a machine shared with other test runs.
  let maxDesired = 0;
  await waitFor(
    "3 replicas serving",
    async () => {
      const a = await autoscaling(url, "work");
      maxDesired = Math.max(maxDesired, a.desired);
      return a.running >= 3;
    },
    30_000,
    100,
  );
  const upMs = Date.now() - t0;
  t.diagnostic(`1 → 3 replicas serving ${upMs} ms after the load started (upscale delay 1 s + look-back 1 s + process start)`);
  assert.ok(upMs >= 1_000, `not before the upscale delay: ${upMs} ms`);
  // Held for 3 s more: the count stays at 3, never 4 (6 ongoing want exactly 3).
  const holdUntil = Date.now() + 3_000;
  await waitFor(
    "3 s at 3 replicas",
    async () => {
      const a = await autoscaling(url, "work");
      maxDesired = Math.max(maxDesired, a.desired);
      return Date.now() >= holdUntil;
    },
    10_000,
    100,
  );
  assert.equal(maxDesired, 3, "no overshoot past what the load needs");
  const served = countBy(load.answers.slice(-60), (a) => String(a.value));
  assert.equal(Object.keys(served).length, 3, `the last 60 answers came from 3 replicas: ${JSON.stringify(served)}`);

  // The load drops to a trickle (one client): 1 replica wanted; the count waits 3 s, then the
  // two idler replicas drain and leave while the trickle goes on.
  load.set(1);
  const t1 = Date.now();
  await waitFor(
    "back to 1 replica",
    async () => {
      const a = await autoscaling(url, "work");
      return a.desired === 1 && a.running === 1;
    },
    30_000,
    100,
  );
  const downMs = Date.now() - t1;
  t.diagnostic(`3 → 1 replica ${downMs} ms after the load dropped (downscale delay 3 s)`);
  assert.ok(downMs >= 3_000, `not before the downscale delay: ${downMs} ms`);
  const answers = await load.stop();
  const failed = answers.filter((a) => a.status !== 200);
  assert.deepEqual(
    countBy(failed, (a) => `${a.status} ${a.code}`),
    {},
    `${failed.length} of ${answers.length} requests failed`,
  );
  assert.ok(answers.length > 100, `${answers.length} requests served`);

  const end = await autoscaling(url, "work");
  const reasons = end.decisions.map((d) => `${d.from}→${d.to} ${d.reason}`);
  assert.deepEqual(reasons, ["1→3 load_above_target", "3→1 load_below_target"]);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /^anyserve_autoscaler_desired_replicas\{service="work"\} 1$/m);
  assert.match(metrics, /^anyserve_autoscaler_decisions_total\{service="work",reason="load_above_target"\} 1$/m);
  assert.match(
    metrics,
    /^anyserve_autoscaler_last_decision_timestamp_seconds\{service="work",reason="load_below_target",from="3",to="1"\} \d/m,
  );

  // `anyserve status` as a person reads it: desired/running and the decisions, newest first.
  const table = (await promisify(execFile)(process.execPath, [BIN, "status", "--api-server", url])).stdout;
  assert.match(table, /^work\s+1\s+1\s+1-4\s+2\s/m, table);
  const rows = table.split("\n").filter((r) => /^work\s+\d\d:\d\d:\d\d\s/.test(r));
  assert.deepEqual(
    rows.map((r) => r.split(/\s+/).slice(2, 6).join(" ")),
    ["3 -> 1 load_below_target", "1 -> 3 load_above_target"],
    table,
  );
});

test("min 0: the service starts cold; the first request is served, its latency the cold start; idle again, it goes back to zero and wakes again", async (t) => {
  const url = await up(t, {
    cold: {
      app: APP,
      autoscaling: {
        min_replicas: 0,
        max_replicas: 2,
        metrics_interval_s: 0.25,
        look_back_period_s: 0.5,
        upscale_delay_s: 0,
        downscale_delay_s: 1,
      },
    },
  });
  const first = await autoscaling(url, "cold");
  assert.deepEqual(
    [first.status, first.desired, first.running],
    ["cold", 0, 0],
    "`up` knew what it serves from its app: no replica started",
  );
  const registry = (await (await fetch(`${url}/registry`)).json()) as { replicas: unknown[]; cold: unknown[] };
  assert.deepEqual(registry.replicas, []);
  assert.deepEqual(registry.cold, [{ service: "cold", state: "cold", capabilities: [{ type: "work" }], waiting: 0 }]);

  const call = async (): Promise<{ status: number; ms: number; body: { outputs?: { data: string[] }[]; code?: string } }> => {
    const t0 = performance.now();
    const res = await fetch(`${url}/infer`, {
      method: "POST",
      headers: { "content-type": "application/json", ...WORK },
      body: JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["x"] }] }),
    });
    return { status: res.status, body: (await res.json()) as never, ms: performance.now() - t0 };
  };
  const coldCall = await call();
  assert.equal(coldCall.status, 200, JSON.stringify(coldCall.body));
  const coldStart = await coldStartSeconds(url, "cold");
  assert.equal(coldStart.count, 1);
  t.diagnostic(`first request after idle: ${Math.round(coldCall.ms)} ms; cold start ${Math.round(coldStart.sum * 1000)} ms`);
  // Its latency is the cold start (a replica process starting) plus the 100 ms of work.
  assert.ok(coldCall.ms >= coldStart.sum * 1000, "the request waited for the whole cold start");
  assert.ok(coldCall.ms < coldStart.sum * 1000 + 2_000, `little beyond it: ${coldCall.ms} ms`);
  const warmCall = await call();
  assert.equal(warmCall.status, 200);
  assert.ok(warmCall.ms < coldCall.ms, "warm afterwards");

  // Idle: back to zero after the downscale delay, and the next request is a cold start again.
  await waitFor(
    "zero replicas",
    async () => (await autoscaling(url, "cold")).running === 0 && (await autoscaling(url, "cold")).desired === 0,
    30_000,
    100,
  );
  assert.equal((await autoscaling(url, "cold")).status, "cold");
  const again = await call();
  assert.equal(again.status, 200);
  assert.equal((await coldStartSeconds(url, "cold")).count, 2);
  const reasons = (await autoscaling(url, "cold")).decisions.map((d) => `${d.from}→${d.to} ${d.reason}`);
  assert.deepEqual(reasons, ["0→1 request_while_cold", "1→0 load_below_target", "0→1 request_while_cold"]);
});

/** The cold-start histogram's count and sum for a service, from /metrics. */
async function coldStartSeconds(url: string, service: string): Promise<{ count: number; sum: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (suffix: string): number =>
    Number(
      new RegExp(`^anyserve_autoscaler_cold_start_seconds_${suffix}\\{service="${service}"\\} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN,
    );
  return { count: read("count"), sum: read("sum") };
}
