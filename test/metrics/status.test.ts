// Observability (issue 7): after a known load, /metrics, /api/services/{name} and
// `anyserve status --json` report the same counts; the terminal table; enable_metrics: false.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import { burst, countBy, type Answer } from "../helpers/load.js";
import { BIN, FIXTURES, startCli, waitFor } from "../helpers/processes.js";
import { sum } from "../helpers/metrics.js";

const run = promisify(execFile);

function load(url: string, capability: string, n: number): Promise<Answer[]> {
  return burst(url, n, 8, { "x-capability-type": capability });
}

test("after 500 requests of which 50 fail, metrics, /api/services and `anyserve status --json` agree", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-status-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "anyserve.yaml");
  writeFileSync(
    file,
    JSON.stringify({
      api_server: { port: 0, grpc_port: null },
      services: {
        svc: {
          app: path.join(FIXTURES, "test_app.ts:app"),
          deployment: { replicas: 2, threading_strategy: "async", thread_count: 16 },
          monitoring: { health_check_interval: 0.5 },
        },
        quiet: { app: path.join(FIXTURES, "resilience_app.ts:app"), monitoring: { enable_metrics: false } },
      },
    }),
  );
  const up = await startCli(t, ["up", file], {}, 120_000);
  const url = up.ready.url!;
  await waitFor("3 replicas", async () => ((await (await fetch(`${url}/registry`)).json()) as { total: number }).total === 3, 60_000);

  const ok = await load(url, "echo", 450);
  const bad = await load(url, "fail_coded", 50);
  assert.deepEqual(
    countBy(ok, (a) => String(a.status)),
    { 200: 450 },
  );
  assert.deepEqual(
    countBy(bad, (a) => `${a.status} ${a.code}`),
    { "400 INVALID_PARAMETER": 50 },
  );
  assert.equal((await load(url, "who", 20)).filter((a) => a.status === 200).length, 20, "the quiet service answers");

  // Refused before routing: counted as rejections by code, not as any service's requests.
  const headerless = await fetch(`${url}/infer`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.equal(headerless.status, 400);
  assert.equal((await fetch(`${url}/nowhere`)).status, 404);

  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.equal(
    sum(metrics, "anyserve_gateway_rejected_total", { code: "MISSING_CAPABILITY" }),
    1,
    metrics
      .split("\n")
      .filter((l) => l.includes("rejected"))
      .join("\n"),
  );
  assert.equal(sum(metrics, "anyserve_gateway_rejected_total", { code: "ROUTE_NOT_FOUND" }), 1);
  assert.equal(sum(metrics, "anyserve_gateway_rejected_total", { code: "INVALID_PARAMETER" }), 0, "a replica's answer is not a rejection");
  assert.equal(sum(metrics, "anyserve_gateway_requests_total", { service: "svc" }), 500);
  assert.equal(sum(metrics, "anyserve_gateway_requests_total", { service: "svc", code: "INVALID_PARAMETER" }), 50);
  assert.equal(sum(metrics, "anyserve_gateway_requests_total", { service: "svc", code: "OK" }), 450);
  assert.equal(sum(metrics, "anyserve_gateway_request_duration_seconds_count", { service: "svc" }), 500, "one latency sample per request");
  assert.equal(
    sum(metrics, "anyserve_gateway_request_duration_seconds_bucket", { service: "svc", capability: "type=echo", le: "+Inf" }),
    450,
  );
  assert.equal(
    sum(metrics, "anyserve_gateway_requests_total", { service: "quiet" }),
    0,
    "enable_metrics: false → no series for the service",
  );
  assert.ok(sum(metrics, "anyserve_process_resident_memory_bytes") > 0);

  const api = (await (await fetch(`${url}/api/services/svc`)).json()) as {
    stats: { requests: number; errors: number; errors_by_code: Record<string, number>; latency_ms: { p50: number; p99: number } };
    replicas: { health: string }[];
  };
  assert.equal(api.stats.requests, 500);
  assert.equal(api.stats.errors, 50);
  assert.deepEqual(api.stats.errors_by_code, { INVALID_PARAMETER: 50 });
  assert.ok(api.stats.latency_ms.p50 > 0 && api.stats.latency_ms.p99 >= api.stats.latency_ms.p50);
  assert.deepEqual(
    api.replicas.map((r) => r.health),
    ["healthy", "healthy"],
  );

  const { stdout } = await run(process.execPath, [BIN, "status", "--json", "--api-server", url]);
  const cli = JSON.parse(stdout) as {
    services: { name: string; stats: { requests: number; errors: number; errors_by_code: Record<string, number> } }[];
  };
  const svc = cli.services.find((s) => s.name === "svc")!;
  assert.deepEqual([svc.stats.requests, svc.stats.errors, svc.stats.errors_by_code], [500, 50, { INVALID_PARAMETER: 50 }]);
  assert.ok(cli.services.some((s) => s.name === "quiet"));

  // The table, as a person reads it: one row per service and per replica.
  const table = (await run(process.execPath, [BIN, "status", "--api-server", url])).stdout;
  const rows = table.split("\n");
  const svcRow = rows.find((r) => r.startsWith("svc "))!.split(/\s+/);
  assert.deepEqual([svcRow[1], svcRow[2], svcRow[3]], ["scheduled", "2", "2"], table);
  assert.equal(svcRow[7], "500");
  assert.equal(svcRow[8], "50");
  assert.ok(
    rows.some((r) => /^svc-0\s+svc\s+running\s+healthy\s+\d+/.test(r)),
    table,
  );
  assert.ok(
    rows.some((r) => /^svc-1\s+svc\s+running\s+healthy\s+\d+/.test(r)),
    table,
  );

  // An unknown service is a clear error with the known ones.
  const unknown = await run(process.execPath, [BIN, "status", "nope", "--api-server", url]).catch(
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal((unknown as { code: number }).code, 1);
  assert.match((unknown as { stderr: string }).stderr, /no service 'nope': known services are quiet, svc/);
});

test("management actions: drain takes a replica out of rotation and undrain puts it back", async (t) => {
  const api = await startCli(t, ["api-server", "--port", "0", "--load-balancing", "round_robin"]);
  const url = api.ready.url!;
  for (const id of ["m-0", "m-1"]) {
    await startCli(t, [
      "start",
      "--app",
      path.join(FIXTURES, "resilience_app.ts:app"),
      "--port",
      "0",
      "--api-server",
      url,
      "--replica-id",
      id,
      "--service",
      "m",
    ]);
  }
  await waitFor("2 replicas", async () => ((await (await fetch(`${url}/registry`)).json()) as { total: number }).total === 2, 30_000);
  const drain = await fetch(`${url}/api/replicas/m-0/drain`, { method: "POST" });
  assert.equal(drain.status, 200, await drain.text());
  const answers = await load(url, "who", 20);
  assert.deepEqual(
    countBy(answers, (a) => String(a.value)),
    { "m-1": 20 },
  );
  const view = (await (await fetch(`${url}/api/services/m`)).json()) as { replicas: { replica_id: string; health: string }[] };
  assert.equal(view.replicas.find((r) => r.replica_id === "m-0")!.health, "draining");
  assert.equal((await fetch(`${url}/api/replicas/m-0/undrain`, { method: "POST" })).status, 200);
  const after = await load(url, "who", 20);
  assert.deepEqual(
    countBy(after, (a) => String(a.value)),
    { "m-0": 10, "m-1": 10 },
  );
  const missing = await fetch(`${url}/api/replicas/zz/drain`, { method: "POST" });
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { code: string }).code, "REPLICA_NOT_FOUND");
});
