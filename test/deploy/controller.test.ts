// The deployment controller's loop on fake replicas and a fake clock (test/deploy/fake-replicas.ts):
// scaling, crashes and their back-off, crash loops, unhealthy replacement, rolling updates that
// keep capacity, live vs restart changes, removed services and an apply during a roll — each an
// outcome of the one reconcile loop. No processes: fast and deterministic. The same controller
// with real processes is under test in up, apply, supervisor and e2e/resilience.
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveService } from "../../src/config/resolve.js";
import { configVersion } from "../../src/deploy/changes.js";
import { DeploymentController } from "../../src/deploy/controller.js";
import { parseDeployment } from "../../src/deploy/load.js";
import type { NodeCapacity } from "../../src/deploy/placement.js";
import { BACKOFF_BASE_MS, CRASH_LOOP_LIMIT } from "../../src/deploy/reconcile.js";
import type { DeploymentFile } from "../../src/config/schema.js";
import { ServicePolicies } from "../../src/gateway/policies.js";
import { silentLogger } from "../../src/util/logger.js";
import { FakeClock, FakeReplicas, settle, type FakeOptions } from "./fake-replicas.js";

const node: NodeCapacity = { name: "local", labels: {}, cpuCores: 64, memoryMb: 65_536, gpuIds: [0, 1, 2, 3] };

function deployment(services: Record<string, Record<string, unknown>>): DeploymentFile {
  return parseDeployment({ services: Object.fromEntries(Object.entries(services).map(([n, s]) => [n, { app: "./app.ts", ...s }])) });
}

function setup(o: FakeOptions = {}) {
  const clock = new FakeClock();
  const fakes = new FakeReplicas(o);
  const policies = new ServicePolicies();
  const controller = new DeploymentController({
    node,
    logger: silentLogger,
    registry: fakes.registry,
    policies,
    replicas: fakes.factory,
    clock,
  });
  const replicas = (service: string) => controller.status().services[service]?.replicas ?? [];
  return { clock, fakes, policies, controller, replicas };
}

/** Readies every starting replica and ends every drain until `done` settles; `check` runs at each step. */
async function drive(fakes: FakeReplicas, done: Promise<unknown>, check: () => void = () => undefined): Promise<void> {
  let finished = false;
  void done.then(() => (finished = true));
  for (let step = 0; step < 100 && !finished; step++) {
    await settle();
    check();
    const next = fakes.inPhase("starting")[0];
    if (next) next.ready();
    else fakes.inPhase("stopping")[0]?.finishStop();
  }
  await done;
}

test("scale up and down: new slots start; going down the highest slots leave; an id is never used twice", async () => {
  const { fakes, controller, replicas } = setup();
  await controller.apply(deployment({ svc: { deployment: { replicas: 1 } } }));
  assert.deepEqual(fakes.serving("svc"), ["svc-0"]);

  const report = await controller.scale("svc", 3);
  assert.deepEqual(report.svc, { status: "scheduled", replicas: 3, changed: [{ field: "deployment.replicas", applied: "live" }] });
  assert.deepEqual(fakes.serving("svc"), ["svc-0", "svc-1", "svc-2"]);
  assert.equal(controller.config!.services.svc!.deployment.replicas, 3, "the shown config follows the scale");

  await controller.scale("svc", 1);
  assert.deepEqual(fakes.live("svc"), ["svc-0"]);
  assert.deepEqual(
    fakes.events.filter((e) => e.endsWith("stopping")).sort(),
    ["svc-1 stopping", "svc-2 stopping"],
    "the highest slots leave, each drains",
  );
  assert.equal(fakes.get("svc-0").starts, 1, "the one that stays is untouched");

  await controller.scale("svc", 2);
  assert.deepEqual(
    replicas("svc").map((r) => [r.replicaId, r.slot, r.state]),
    [
      ["svc-0", 0, "running"],
      ["svc-1-r2", 1, "running"],
    ],
  );
  await controller.scale("svc", 0);
  assert.deepEqual(fakes.live("svc"), []);
  await assert.rejects(controller.scale("nope", 1), /no service 'nope' is deployed/);
});

test("a crash is restarted after its back-off, not before: 0.25 s, then 0.5 s; the count resets after a quiet minute", async () => {
  const { clock, fakes, controller, replicas } = setup();
  await controller.apply(deployment({ svc: {} }));
  const r = fakes.get("svc-0");

  r.exit("SIGKILL");
  await settle();
  assert.equal(fakes.registry.get("svc-0"), undefined, "a replica that dies leaves the registry at once");
  assert.equal(replicas("svc")[0]!.state, "restarting");
  await clock.advance(BACKOFF_BASE_MS - 1);
  assert.equal(r.phase, "exited", "not restarted before its back-off");
  await clock.advance(1);
  assert.equal(r.phase, "running", "restarted when its back-off is over");
  assert.deepEqual([r.starts, replicas("svc")[0]!.restarts, replicas("svc")[0]!.lastExit], [2, 1, "SIGKILL"]);
  assert.equal(replicas("svc")[0]!.replicaId, "svc-0", "the same replica, started again");

  r.exit();
  await clock.advance(2 * BACKOFF_BASE_MS - 1);
  assert.equal(r.phase, "exited", "the second crash within a minute waits twice as long");
  await clock.advance(1);
  assert.equal(r.phase, "running");

  await clock.advance(60_000);
  r.exit();
  await clock.advance(BACKOFF_BASE_MS);
  assert.equal(r.phase, "running", "after a minute without crashes the back-off starts over");
});

test("a crash loop is given up: 5 starts with back-offs 0.25, 0.5, 1, 2 s, then crash_looping, left down and reported", async () => {
  const { clock, fakes, controller, replicas } = setup({ failsToStart: (s) => s.service === "broken" });
  const starts: number[] = [];
  fakes.onEvent = () => {
    const last = fakes.events[fakes.events.length - 1];
    if (last === "broken-0 starting" && starts.length < fakes.get("broken-0").starts) starts.push(clock.now());
  };
  let applied = false;
  const done = controller.apply(deployment({ broken: {}, good: {} })).then(() => (applied = true));
  await clock.advance(3_000);
  assert.equal(applied, false, "apply waits while a replica is backing off");
  await clock.advance(2_000);
  await done;
  assert.deepEqual(
    starts.slice(1).map((t, i) => t - starts[i]!),
    [250, 500, 1000, 2000],
  );
  const broken = replicas("broken")[0]!;
  assert.deepEqual([broken.state, broken.restarts], ["crash_looping", CRASH_LOOP_LIMIT - 1]);
  assert.match(broken.lastExit!, /missing model weights/);
  await clock.advance(10 * 60_000);
  assert.equal(fakes.get("broken-0").starts, CRASH_LOOP_LIMIT, "never started again");
  assert.deepEqual(fakes.serving("good"), ["good-0"], "the other service runs");
  // A changed config is a new version: the given-up replica is replaced by one that runs.
  fakes.o.failsToStart = () => false;
  await controller.apply(deployment({ broken: { app: "./fixed.ts" }, good: {} }));
  assert.deepEqual(
    replicas("broken").map((r) => [r.replicaId, r.state]),
    [["broken-0-r2", "running"]],
  );
});

test("an unhealthy replica is killed after unhealthy_restart_after and restarted; one that recovers first is kept", async () => {
  const { clock, fakes, controller, replicas } = setup();
  await controller.apply(deployment({ svc: { deployment: { replicas: 3 }, monitoring: { unhealthy_restart_after: 5 } } }));
  const entry = fakes.registry.get("svc-1")!;
  entry.probeFailures = 3;
  entry.probeError = "timed out after 1000 ms";
  fakes.registry.setHealthy("svc-1", false);
  await clock.advance(4_999);
  assert.equal(fakes.get("svc-1").phase, "running", "not before its time");
  await clock.advance(1);
  assert.equal(replicas("svc")[1]!.lastExit, "replaced, not serving for 5 s (3 failed health checks: timed out after 1000 ms) (SIGKILL)");
  await clock.advance(BACKOFF_BASE_MS);
  assert.deepEqual([fakes.get("svc-1").phase, fakes.get("svc-1").starts], ["running", 2]);
  assert.deepEqual(fakes.serving("svc"), ["svc-0", "svc-1", "svc-2"], "serving again");

  // Unhealthy for 3 s, then healthy: kept; unhealthy again: its grace starts over.
  fakes.registry.setHealthy("svc-0", false);
  await clock.advance(3_000);
  fakes.registry.setHealthy("svc-0", true);
  await clock.advance(30_000);
  fakes.registry.setHealthy("svc-0", false);
  await clock.advance(4_999);
  assert.deepEqual([fakes.get("svc-0").phase, fakes.get("svc-0").starts], ["running", 1]);
  fakes.registry.setHealthy("svc-0", true);

  // Out of the registry (no heartbeat) counts as not serving too.
  fakes.registry.unregister("svc-2");
  await clock.advance(5_000);
  assert.match(replicas("svc")[2]!.lastExit!, /^replaced, not serving for 5 s \(not registered \(no heartbeat\)\)/);
});

test("with unhealthy_restart_after: null an unhealthy replica is never killed", async () => {
  const { clock, fakes, controller } = setup();
  await controller.apply(deployment({ svc: { monitoring: { unhealthy_restart_after: null } } }));
  fakes.registry.setHealthy("svc-0", false);
  await clock.advance(60 * 60_000);
  assert.deepEqual([fakes.get("svc-0").phase, fakes.get("svc-0").starts], ["running", 1]);
});

test("a rolling replacement keeps capacity: one new replica at a time, each old one drains only once its successor serves", async () => {
  const { fakes, controller, replicas } = setup({ autoReady: false, autoStop: false });
  const v1 = deployment({ svc: { deployment: { replicas: 3 } } });
  await drive(fakes, controller.apply(v1));
  assert.deepEqual(fakes.serving("svc"), ["svc-0", "svc-1", "svc-2"]);

  const v2 = deployment({ svc: { deployment: { replicas: 3 }, performance: { queue_size: 4 } } });
  let minServing = Number.POSITIVE_INFINITY;
  let maxLive = 0;
  let maxNewStarting = 0;
  fakes.onEvent = () => {
    minServing = Math.min(minServing, fakes.serving("svc").length);
    maxLive = Math.max(maxLive, fakes.live("svc").length);
    maxNewStarting = Math.max(maxNewStarting, fakes.inPhase("starting").length);
  };
  const applied = controller.apply(v2);
  await drive(fakes, applied, () => assert.ok(fakes.serving("svc").length >= 3, `serving: ${fakes.serving("svc").join(", ")}`));
  const report = await applied;
  assert.deepEqual(report.svc!.changed, [{ field: "performance.queue_size", applied: "restart" }]);
  assert.equal(minServing, 3, "never fewer than 3 serving, at any phase change or registry change");
  assert.equal(maxLive, 4, "one extra replica at a time");
  assert.equal(maxNewStarting, 1);
  assert.deepEqual(
    replicas("svc").map((r) => [r.replicaId, r.state, r.version]),
    ["svc-0-r2", "svc-1-r2", "svc-2-r2"].map((id) => [id, "running", configVersion(resolveService(v2.services.svc!))]),
  );
  // Each old replica started to drain after its successor was ready, and the next roll waited for the drain.
  const order = fakes.events.filter((e) => /(-r2 running| stopping| stopped|-r2 starting)$/.test(e));
  assert.deepEqual(order, [
    "svc-0-r2 starting",
    "svc-0-r2 running",
    "svc-0 stopping",
    "svc-0 stopped",
    "svc-1-r2 starting",
    "svc-1-r2 running",
    "svc-1 stopping",
    "svc-1 stopped",
    "svc-2-r2 starting",
    "svc-2-r2 running",
    "svc-2 stopping",
    "svc-2 stopped",
  ]);
});

test("a roll whose new version crash-loops stops there: the old replicas keep serving", async () => {
  const { clock, fakes, controller, replicas } = setup({ failsToStart: (s) => s.config.app === "./broken.ts" });
  await controller.apply(deployment({ svc: { deployment: { replicas: 2 } } }));
  const applied = controller.apply(deployment({ svc: { app: "./broken.ts", deployment: { replicas: 2 } } }));
  await clock.advance(10_000);
  await applied;
  assert.deepEqual(fakes.serving("svc"), ["svc-0", "svc-1"]);
  assert.deepEqual(
    replicas("svc").map((r) => [r.replicaId, r.state]),
    [
      ["svc-0", "running"],
      ["svc-0-r2", "crash_looping"],
      ["svc-1", "running"],
    ],
  );
});

test("a live change applies without replacing anything; a restart-type change replaces every replica", async () => {
  const { clock, fakes, controller, policies } = setup();
  await controller.apply(deployment({ svc: { deployment: { replicas: 2 } } }));
  const report = await controller.apply(
    deployment({
      svc: {
        deployment: { replicas: 2, load_balancing: "round_robin", failover_enabled: true },
        monitoring: { health_check_interval: 2, unhealthy_restart_after: 1 },
      },
    }),
  );
  assert.deepEqual(
    report.svc!.changed.map((c) => `${c.field}:${c.applied}`),
    [
      "deployment.load_balancing:live",
      "deployment.failover_enabled:live",
      "monitoring.health_check_interval:live",
      "monitoring.unhealthy_restart_after:live",
    ],
  );
  assert.equal(fakes.made.length, 2, "no replica started");
  assert.deepEqual(fakes.live("svc"), ["svc-0", "svc-1"]);
  assert.deepEqual(policies.describe().svc, { load_balancing: "round_robin", failover_enabled: true, health_check_interval_ms: 2000 });
  fakes.registry.setHealthy("svc-0", false);
  await clock.advance(1_000);
  assert.match(fakes.get("svc-0").lastExit!, /not serving for 1 s/, "the new unhealthy_restart_after is in force");
  await clock.advance(BACKOFF_BASE_MS);

  const replaced = await controller.apply(
    deployment({
      svc: { deployment: { replicas: 2, load_balancing: "round_robin", failover_enabled: true }, performance: { timeout: 5 } },
    }),
  );
  assert.ok(replaced.svc!.changed.some((c) => c.field === "performance.timeout" && c.applied === "restart"));
  assert.deepEqual(fakes.live("svc"), ["svc-0-r2", "svc-1-r2"]);
  assert.equal(fakes.get("svc-0-r2").spec.config.performance.timeout, 5, "the new replicas run the new config");
});

test("apply with restart replaces a service's replicas although its config is the same; a later plain apply keeps them", async () => {
  const { fakes, controller } = setup();
  const file = deployment({ model: { deployment: { replicas: 2 } }, other: {} });
  await controller.apply(file);
  const report = await controller.apply(structuredClone(file), { restart: ["model"] });
  assert.deepEqual(report.model!.changed, [], "nothing in the config changed");
  assert.deepEqual(fakes.live("model"), ["model-0-r2", "model-1-r2"]);
  assert.deepEqual(fakes.live("other"), ["other-0"], "the other service is untouched");
  await controller.apply(structuredClone(file));
  assert.deepEqual(fakes.live("model"), ["model-0-r2", "model-1-r2"], "the restart is not repeated");
  assert.equal(fakes.made.length, 5);
});

test("removing a service stops its replicas and its routing policy; the others are untouched", async () => {
  const { fakes, controller, policies } = setup();
  await controller.apply(deployment({ a: { deployment: { replicas: 2 } }, b: {} }));
  const report = await controller.apply(deployment({ b: {} }));
  assert.deepEqual(report.a, { status: "removed", replicas: 0, changed: [] });
  assert.deepEqual(fakes.live("a"), []);
  assert.equal(fakes.registry.get("a-0"), undefined);
  assert.deepEqual(Object.keys(controller.status().services), ["b"]);
  assert.equal(policies.describe().a, undefined);
  assert.deepEqual([fakes.live("b"), fakes.get("b-0").starts], [["b-0"], 1]);
});

test("an apply during a roll takes over at once: the half-rolled replica leaves and the deployment ends in the newest state", async () => {
  const { fakes, controller, replicas } = setup({ autoReady: false, autoStop: false });
  await drive(fakes, controller.apply(deployment({ svc: { deployment: { replicas: 2 } } })));
  const v2 = controller.apply(deployment({ svc: { deployment: { replicas: 2 }, performance: { queue_size: 2 } } }));
  await settle();
  assert.deepEqual(
    fakes.inPhase("starting").map((r) => r.spec.replicaId),
    ["svc-0-r2"],
  );
  const v3file = deployment({ svc: { deployment: { replicas: 2 }, performance: { queue_size: 3 } } });
  const v3 = controller.apply(v3file);
  await drive(fakes, Promise.all([v2, v3]), () => assert.ok(fakes.serving("svc").length >= 2, fakes.serving("svc").join(", ")));
  const version = configVersion(resolveService(v3file.services.svc!));
  assert.deepEqual(
    replicas("svc").map((r) => [r.state, r.version]),
    [
      ["running", version],
      ["running", version],
    ],
  );
  assert.equal(fakes.get("svc-0-r2").phase, "stopped", "the previous apply's replica never served and left");
  assert.equal(fakes.made.filter((r) => r.spec.config.performance.queue_size === 2).length, 1, "one v2 replica was ever made");
});

test("stopAll drains every replica, including one starting and one backing off; nothing runs after", async () => {
  const { clock, fakes, controller } = setup();
  await controller.apply(deployment({ a: { deployment: { replicas: 2 } } }));
  fakes.get("a-1").exit();
  await settle();
  fakes.o.autoReady = false;
  const scaled = controller.scale("a", 3);
  await settle();
  assert.deepEqual([fakes.get("a-1").phase, fakes.get("a-2").phase], ["exited", "starting"]);
  await controller.stopAll();
  await scaled;
  await clock.advance(60_000);
  assert.deepEqual(fakes.live("a"), []);
  assert.deepEqual(
    fakes.made.map((r) => r.starts),
    [1, 1, 1],
    "the crashed replica was not restarted",
  );
  await assert.rejects(controller.apply(deployment({ a: {} })), /the deployment is stopping/);
});
