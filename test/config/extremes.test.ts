// Any value the schema accepts runs: every service field at its smallest and at its largest legal
// value (read off the schema itself), deployed with `anyserve up`, gives replicas that serve (no
// crash loop) and report the very config they were given (GET /config). Placement and balancing
// fields are the controller's: checked in its report (/api/deployment) instead. Replica counts are
// processes: 0 is deployed here, and 1000 is refused before anything starts (a node of this size
// cannot hold them), with the reason.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { z } from "zod";
import { type FieldInfo, serviceFields, valueAt } from "../../src/config/fields.js";
import { resolveService } from "../../src/config/resolve.js";
import { BIN, ROOT, startCli, waitFor } from "../helpers/processes.js";

// One capability (a no-op), so that the worker strategies start few workers.
const APP = path.join(ROOT, "bench", "apps", "noop_app.ts:app");

/** A field's legal bounds, from its JSON Schema. */
function bounds(f: FieldInfo): { min: unknown; max: unknown } {
  const js = z.toJSONSchema(f.schema, { io: "input" }) as {
    anyOf?: { type?: string; minimum?: number; maximum?: number; maxItems?: number; enum?: string[] }[];
  } & { type?: string; minimum?: number; maximum?: number; maxItems?: number; enum?: string[] };
  const v = (js.anyOf ?? [js]).find((x) => x.type !== "null")!;
  switch (f.kind) {
    case "number":
      assert.ok(v.minimum !== undefined && v.maximum !== undefined, `${f.path}: a number field needs an inclusive minimum and maximum`);
      return { min: v.minimum, max: v.maximum };
    case "boolean":
      return { min: false, max: true };
    case "list":
      return { min: [], max: Array.from({ length: v.maxItems ?? 1 }, (_, i) => `ENV_${i}`) };
    default:
      return { min: undefined, max: undefined };
  }
}

/** Fields this test sets by hand (placement, strings, enums) rather than to their bounds. */
const BY_HAND = new Set([
  "app",
  "deployment.target",
  "deployment.target_nodes",
  "deployment.node_selector",
  "deployment.threading_strategy",
  "deployment.replicas",
  "deployment.load_balancing",
  "object_store.dir",
  // Process counts like deployment.replicas: 1000 cannot run here. Their bounds are the controller
  // tests' (test/deploy/autoscaling.test.ts); here both are 1, so the other autoscaling fields run
  // at their extremes (a 0.1 s load probe, 0 s delays, a 100000 target) on one replica.
  "autoscaling.min_replicas",
  "autoscaling.max_replicas",
]);

function setAt(cfg: Record<string, Record<string, unknown>>, field: string, value: unknown): void {
  const [section, key] = field.split(".") as [string, string];
  (cfg[section] ??= {})[key] = value;
}

test("every service field at its smallest and largest legal value runs under anyserve up, as given", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-extremes-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fields = serviceFields();
  const edge = (which: "min" | "max"): Record<string, Record<string, unknown>> => {
    const cfg: Record<string, Record<string, unknown>> = {};
    for (const f of fields) if (!BY_HAND.has(f.path)) setAt(cfg, f.path, bounds(f)[which]);
    setAt(cfg, "object_store.dir", path.join(dir, `objects-${which}`));
    setAt(cfg, "deployment.load_balancing", which === "min" ? false : "first_available");
    setAt(cfg, "autoscaling.min_replicas", 1);
    setAt(cfg, "autoscaling.max_replicas", 1);
    return cfg;
  };
  // Every strategy runs too (at the threads its config resolves to); the extremes run `single`, so
  // thread_count 1024 is a number the replica must accept and report, not 1024 threads here.
  const services: Record<string, Record<string, unknown>> = {
    at_min: { app: APP, ...edge("min") },
    at_max: { app: APP, ...edge("max") },
    zero: { app: APP, deployment: { replicas: 0 } },
    ...Object.fromEntries(
      ["async", "multi", "pool", "process"].map((s) => [`s_${s}`, { app: APP, deployment: { threading_strategy: s } }]),
    ),
  };
  const maxOf = (p: string) => bounds(fields.find((f) => f.path === p)!).max as number;
  const file = path.join(dir, "anyserve.yaml");
  writeFileSync(
    file,
    JSON.stringify({
      api_server: { port: 0, grpc_port: null },
      // A node big enough for the largest resources a service may ask for.
      node: {
        cpu_cores: maxOf("resources.cpu_cores") + 1,
        memory_mb: maxOf("resources.memory_mb") + 4096,
        gpu_count: maxOf("resources.gpu_count"),
      },
      services,
    }),
  );
  const up = await startCli(t, ["up", file], {}, 120_000);
  const url = up.ready.url!;

  interface Deployment {
    services: Record<string, { config: unknown; replicas: { replicaId: string; state: string; restarts: number; http: string | null }[] }>;
  }
  const deployment = (await (await fetch(`${url}/api/deployment`)).json()) as Deployment;
  for (const [name, input] of Object.entries(services)) {
    const s = deployment.services[name]!;
    // A service naming no object store gets its deployment's own, beside the file.
    const expected = resolveService(input as never, { objectStoreDir: path.join(dir, ".anyserve", "objects") });
    const wanted = (input.deployment as { replicas?: number } | undefined)?.replicas ?? 1;
    assert.equal(s.replicas.length, wanted, name);
    for (const r of s.replicas) {
      assert.deepEqual([r.state, r.restarts], ["running", 0], `${name}: ${r.replicaId} runs, never restarted`);
      const reported = (await (await fetch(`${r.http}/config`)).json()) as { config: unknown };
      assert.deepEqual(reported.config, expected, `${name}: the replica reports the config it was given`);
      for (const f of fields) {
        // The controller's fields (placement, balancing) are in its own report.
        if (f.meta.flag === false) assert.deepEqual(valueAt(s.config, f.path), valueAt(expected, f.path), `${name}: ${f.path}`);
      }
      const health = await fetch(`${r.http}/health`);
      assert.equal(health.status, 200, `${name}: ${r.replicaId} is healthy`);
    }
  }
  // Replicas that serve answer (at_min's 1 ms timeout answers 504 — it runs, its requests cannot).
  const infer = (service: string) =>
    fetch(`${url}/infer`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-capability-type": "noop" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] }),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as unknown, service }));
  const ok = await waitFor("a noop answer", async () => (await infer("any")).status === 200, 20_000);
  assert.ok(ok);
  const byReplica = await fetch(`${deployment.services.at_max!.replicas[0]!.http}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-capability-type": "noop" },
    body: JSON.stringify({ inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] }),
  });
  assert.equal(byReplica.status, 200);
  for (const s of ["s_async", "s_multi", "s_pool", "s_process"]) {
    const res = await fetch(`${deployment.services[s]!.replicas[0]!.http}/infer`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-capability-type": "noop" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] }),
    });
    assert.equal(res.status, 200, `${s} serves`);
  }
});

test("replicas: 1000 is refused before anything starts, with the reason (a node this size cannot hold them)", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-extremes-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "anyserve.yaml");
  writeFileSync(
    file,
    JSON.stringify({
      api_server: { port: 0, grpc_port: null },
      node: { memory_mb: 32_768 },
      services: { many: { app: APP, deployment: { replicas: 1000 } } },
    }),
  );
  const err = await promisify(execFile)(process.execPath, [BIN, "up", file], { timeout: 60_000 }).then(
    () => assert.fail("up should refuse"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 2);
  assert.match(
    err.stderr,
    /memory_mb: the services need 64000 MB in all \(replicas × memory_mb, 64 MB for a replica that sets none\); node .local. has 32768 MB/,
  );
});
