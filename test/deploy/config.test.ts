// The deployment config: defaults, the seed's layout, and 20 malformed configs each refused with
// the failing path and the reason — every problem at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, parseDeployment, closest } from "../../src/deploy/load.js";
import { diffFields } from "../../src/deploy/changes.js";

const service = (over: Record<string, unknown> = {}) => ({ services: { svc: { app: "./app.ts", ...over } } });

test("defaults follow the seed's ServiceDeploymentConfig", () => {
  const s = parseDeployment(service()).services.svc!;
  assert.equal(s.deployment.target, "local");
  assert.equal(s.deployment.threading_strategy, "single");
  assert.equal(s.deployment.thread_count, null, "decided by the strategy when the config is resolved (1 for single)");
  assert.equal(s.deployment.replicas, 1);
  assert.equal(s.deployment.load_balancing, true, "anyserve balances by default (the seed defaults to false; docs/config.md says why)");
  assert.equal(s.deployment.failover_enabled, false);
  assert.equal(s.performance.queue_size, 1000);
  assert.equal(s.performance.timeout, 30);
  assert.equal(s.performance.batch_size, null);
  assert.equal(s.monitoring.enable_metrics, true);
  assert.equal(s.monitoring.health_check_interval, 10);
  assert.equal(s.monitoring.unhealthy_restart_after, 30, "an unhealthy replica is replaced after 30 s by default");
});

test("unhealthy_restart_after: null stays null (never replace), in YAML too, not the default", () => {
  assert.equal(
    parseDeployment(service({ monitoring: { unhealthy_restart_after: null } })).services.svc!.monitoring.unhealthy_restart_after,
    null,
  );
  const yaml = "services:\n  svc:\n    app: ./app.ts\n    monitoring:\n      unhealthy_restart_after: null\n";
  assert.equal(parseDeployment(yaml).services.svc!.monitoring.unhealthy_restart_after, null);
});

test("the seed's YAML layout is accepted verbatim (plus app:)", () => {
  const doc = parseDeployment(`
services:
  kv_service:
    app: ./kv.ts:KVService
    deployment:
      target: remote_specific
      target_nodes: ["node-storage-01", "node-storage-02"]
      threading_strategy: multi
      thread_count: 4
      replicas: 2
      load_balancing: true
    resources:
      cpu_cores: 2.0
      memory_mb: 4096
    performance:
      queue_size: 2000
      timeout: 60.0
      batch_size: 10
`);
  const kv = doc.services.kv_service!;
  assert.equal(kv.deployment.replicas, 2);
  assert.deepEqual(kv.deployment.target_nodes, ["node-storage-01", "node-storage-02"]);
  assert.equal(kv.performance.batch_size, 10);
});

const malformed: [string, unknown, RegExp][] = [
  ["negative replicas", service({ deployment: { replicas: -1 } }), /services\.svc\.deployment\.replicas: .*got -1/],
  ["replicas as a word", service({ deployment: { replicas: "two" } }), /deployment\.replicas: .*got "two"/],
  ["replicas 1e9", service({ deployment: { replicas: 1e9 } }), /deployment\.replicas: .*1000/],
  ["fractional replicas", service({ deployment: { replicas: 1.5 } }), /deployment\.replicas: .*expected int.*got 1.5/],
  [
    "unknown strategy",
    service({ deployment: { threading_strategy: "turbo" } }),
    /threading_strategy: .*single.*async.*multi.*pool.*process.*got "turbo"/,
  ],
  ["unknown key with a hint", service({ deployment: { replica: 2 } }), /deployment\.replica: unknown key; did you mean 'replicas'\?/],
  ["unknown section", service({ perfomance: {} }), /services\.svc\.perfomance: unknown key; did you mean 'performance'\?/],
  ["unknown top-level key", { ...service(), servics: {} }, /servics: unknown key; did you mean 'services'\?/],
  [
    "max_thread_count < thread_count",
    service({ deployment: { thread_count: 4, max_thread_count: 2 } }),
    /max_thread_count: must be at least thread_count \(4\); got 2/,
  ],
  [
    "thread_pool_size < thread_count",
    service({ deployment: { thread_count: 8, thread_pool_size: 2 } }),
    /thread_pool_size: must be at least thread_count \(8\)/,
  ],
  ["negative queue_size", service({ performance: { queue_size: -5 } }), /performance\.queue_size: .*got -5/],
  ["zero timeout", service({ performance: { timeout: 0 } }), /performance\.timeout: .*got 0/],
  ["timeout as a string", service({ performance: { timeout: "30s" } }), /performance\.timeout: .*got "30s"/],
  ["unknown target", service({ deployment: { target: "mars" } }), /deployment\.target: .*local.*remote_any/],
  [
    "remote_specific without nodes",
    service({ deployment: { target: "remote_specific" } }),
    /target_nodes: target remote_specific needs at least one node name/,
  ],
  ["unknown balancing strategy", service({ deployment: { load_balancing: "fastest" } }), /deployment\.load_balancing/],
  ["negative gpu_count", service({ resources: { gpu_count: -1 } }), /resources\.gpu_count: .*got -1/],
  ["memory_mb zero", service({ resources: { memory_mb: 0 } }), /resources\.memory_mb: .*got 0/],
  [
    "missing app",
    { services: { svc: { deployment: {} } } },
    /services\.svc\.app: missing: add the module that serves the service.*`app: \.\/svc\.ts:Svc`/,
  ],
  ["no services", { services: {} }, /services: at least one service is needed/],
];

for (const [name, doc, expected] of malformed) {
  test(`malformed: ${name} → refused with its path and reason`, () => {
    assert.throws(
      () => parseDeployment(doc),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, expected);
        return true;
      },
    );
  });
}

test("every failing field is reported at once", () => {
  assert.throws(
    () =>
      parseDeployment(
        service({ deployment: { replicas: -1, thread_count: 0, threading_strategy: "x" }, performance: { queue_size: "a" } }),
      ),
    (err: ConfigError) => err.issues.length === 4,
  );
});

test("YAML syntax errors are reported, not thrown raw", () => {
  assert.throws(() => parseDeployment("services: [\n  - a: 1\n b"), /not valid YAML/);
  assert.throws(() => parseDeployment("services:\n  a: {app: x}\n  a: {app: y}\n"), /not valid YAML/);
});

test("did-you-mean only suggests close keys", () => {
  assert.equal(closest("replica", ["replicas", "target"]), "replicas");
  assert.equal(closest("zzzzzz", ["replicas", "target"]), undefined);
});

test("diffFields says which changes apply live and which replace replicas", () => {
  const a = parseDeployment(service()).services.svc!;
  const b = parseDeployment(service({ deployment: { replicas: 3, thread_count: 2 } })).services.svc!;
  assert.deepEqual(diffFields(a, b), [
    { field: "deployment.thread_count", applied: "restart" },
    { field: "deployment.replicas", applied: "live" },
  ]);
});
