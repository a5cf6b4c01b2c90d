// The autoscaler in the deployment controller, on fake replicas and a fake clock
// (test/deploy/fake-replicas.ts): the load each replica reports is set by the test (as the API
// server's probes would store it in the registry), time moves only when the test moves it, so
// every decision's moment is exact. Step load, ramp, load oscillating around a boundary, zero
// traffic, bounds, the node's capacity, which replicas leave, and scale to zero with the API
// server's cold starts (the real gateway/cold-start.ts on the same registry). The same loop with
// real processes and real load is under test in test/e2e/autoscaling.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DeploymentController } from "../../src/deploy/controller.js";
import { parseDeployment } from "../../src/deploy/load.js";
import type { NodeCapacity } from "../../src/deploy/placement.js";
import type { DeploymentFile } from "../../src/config/schema.js";
import { ColdStarts } from "../../src/gateway/cold-start.js";
import { ServicePolicies } from "../../src/gateway/policies.js";
import { Cancellation } from "../../src/util/cancel.js";
import { silentLogger } from "../../src/util/logger.js";
import { FakeClock, FakeReplicas, settle, type FakeOptions } from "./fake-replicas.js";

const node: NodeCapacity = { name: "local", labels: {}, cpuCores: 8, memoryMb: 65_536, gpuIds: [] };

/** Ray Serve's defaults but for the bounds: target 2, metrics every 10 s, look-back 30 s, up after 30 s, down after 600 s. */
const RAY = { min_replicas: 1, max_replicas: 4 };

function deployment(services: Record<string, Record<string, unknown>>): DeploymentFile {
  return parseDeployment({ services: Object.fromEntries(Object.entries(services).map(([n, s]) => [n, { app: "./app.ts", ...s }])) });
}

function setup(o: FakeOptions & { node?: NodeCapacity } = {}) {
  const clock = new FakeClock();
  const fakes = new FakeReplicas(o);
  const coldStarts = new ColdStarts(fakes.registry, () => clock.now());
  const controller = new DeploymentController({
    node: o.node ?? node,
    logger: silentLogger,
    registry: fakes.registry,
    policies: new ServicePolicies(),
    replicas: fakes.factory,
    clock,
    coldStarts,
  });
  const view = (service = "svc") => controller.status().services[service]!.autoscaling!;
  /** The load on the service: `total` requests ongoing, spread over its serving replicas as a balancer would. */
  const load = (total: number, service = "svc"): void => {
    const ids = fakes.serving(service);
    ids.forEach((id, i) => {
      const share = Math.floor(total / ids.length) + (i < total % ids.length ? 1 : 0);
      fakes.registry.get(id)!.load = { in_flight: Math.min(share, 1), queue_depth: Math.max(0, share - 1) };
    });
  };
  /** Moves time second by second for `seconds`, the load set to `total(t)` (t: seconds since the start of this run) before each. */
  const run = async (seconds: number, total: (t: number) => number, service = "svc"): Promise<void> => {
    for (let t = 0; t < seconds; t++) {
      load(total(t), service);
      await clock.advance(1_000);
    }
  };
  const t0 = clock.now();
  /** Decisions as `[seconds since setup, from, to, reason]`. */
  const decisions = (service = "svc") => view(service).decisions.map((d) => [(d.at - t0) / 1000, d.from, d.to, d.reason]);
  return { clock, fakes, coldStarts, controller, view, load, run, decisions };
}

test("a step of load: up once it has lasted upscale_delay_s, to ceil(load / target); down after downscale_delay_s", async () => {
  const { fakes, controller, run, view, decisions } = setup();
  const report = await controller.apply(deployment({ svc: { autoscaling: RAY } }));
  assert.equal(report.svc!.replicas, 1, "starts at min_replicas");
  // 6 requests ongoing at target 2 want 3 replicas. Samples at 10, 20, 30 s…: wanted since 10 s, due at 40 s.
  await run(39, () => 6);
  assert.deepEqual(fakes.live("svc"), ["svc-0"], "not before the upscale delay has passed");
  assert.match(view().pending!, /^up to 3 in 1 s if the load holds$/);
  await run(1, () => 6);
  await settle();
  assert.deepEqual(fakes.serving("svc"), ["svc-0", "svc-1", "svc-2"]);
  assert.deepEqual(decisions(), [[40, 1, 3, "load_above_target"]]);
  assert.match(view().decisions[0]!.detail, /^6 request\(s\) ongoing on average over 30 s \(target 2 per replica\) want 3, for 30 s$/);

  // The load stops: the look-back average falls, fewer are wanted from the next sample on (50 s);
  // the count stays for downscale_delay_s (600 s) and then goes to min_replicas in one step.
  await run(609, () => 0);
  assert.equal(fakes.live("svc").length, 3, "no downscale before 600 s");
  await run(1, () => 0);
  await settle();
  assert.deepEqual(decisions().at(-1), [650, 3, 1, "load_below_target"]);
  assert.deepEqual(fakes.live("svc").length, 1);
  assert.deepEqual([view().desired, view().running], [1, 1]);
});

test("a ramp grows the count step by step, never past max_replicas (then says so), and never shrinks it on the way", async () => {
  const { fakes, controller, run, view, decisions } = setup();
  await controller.apply(deployment({ svc: { autoscaling: { ...RAY, upscale_delay_s: 10, look_back_period_s: 10 } } }));
  // One more request ongoing every 10 s, up to 12 (6 replicas' worth at target 2).
  await run(160, (t) => Math.min(12, Math.floor(t / 10)));
  const counts = decisions().map((d) => d[2] as number);
  assert.ok(counts.length >= 2, `decisions: ${JSON.stringify(decisions())}`);
  assert.ok(
    counts.every((c, i) => i === 0 || c > counts[i - 1]!),
    `only ever up: ${JSON.stringify(decisions())}`,
  );
  assert.equal(counts.at(-1), 4, "up to max_replicas");
  assert.equal(fakes.serving("svc").length, 4);
  assert.equal(view().wanted, 4);
  assert.equal(view().limited_by, "max_replicas 4");
});

test("load oscillating around a boundary does not flap: no change while no direction lasts its delay", async () => {
  const { fakes, controller, run, decisions } = setup();
  // One sample per decision (look-back = interval), so each sample wants 2 or 3 replicas in turn.
  await controller.apply(
    deployment({ svc: { autoscaling: { ...RAY, upscale_delay_s: 30, downscale_delay_s: 60, look_back_period_s: 10 } } }),
  );
  await run(40, () => 4);
  assert.deepEqual(decisions(), [[40, 1, 2, "load_above_target"]]);
  // 4 and 5 requests in turn, 10 s each: 2 and 3 replicas wanted in turn, for an hour.
  await run(3_600, (t) => (Math.floor(t / 10) % 2 === 0 ? 5 : 4));
  assert.deepEqual(decisions(), [[40, 1, 2, "load_above_target"]], "no change: neither direction lasted its delay");
  assert.equal(fakes.live("svc").length, 2);
  // Around a boundary from above: 3 replicas, load 4 and 5 in turn → 2 and 3 wanted: never down.
  await run(40, () => 6);
  const after = decisions().length;
  await run(3_600, (t) => (Math.floor(t / 10) % 2 === 0 ? 4 : 5));
  assert.equal(decisions().length, after, `no change: ${JSON.stringify(decisions().slice(after))}`);
  assert.equal(fakes.live("svc").length, 3);
});

test("zero traffic never grows anything, and no reports at all is no decision (not a jump to max)", async () => {
  const { fakes, controller, run, clock, view, decisions } = setup();
  await controller.apply(deployment({ svc: { autoscaling: { min_replicas: 1, max_replicas: 10, upscale_delay_s: 0 } } }));
  // No load reported by anyone for an hour: the replica's entry has no load at all.
  await clock.advance(3_600_000);
  assert.deepEqual(decisions(), []);
  // Reports of zero load for an hour.
  await run(3_600, () => 0);
  assert.deepEqual(decisions(), []);
  assert.deepEqual([fakes.live("svc").length, view().desired, view().wanted, view().limited_by], [1, 1, 1, null]);
});

test("bounds: never above max_replicas nor below min_replicas; an apply that moves the bounds moves the count at once", async () => {
  const { fakes, controller, run, view, decisions } = setup();
  await controller.apply(
    deployment({ svc: { autoscaling: { min_replicas: 2, max_replicas: 3, upscale_delay_s: 0, downscale_delay_s: 0 } } }),
  );
  assert.equal(fakes.live("svc").length, 2, "min_replicas from the start");
  await run(30, () => 100);
  assert.equal(fakes.live("svc").length, 3);
  assert.equal(view().limited_by, "max_replicas 3");
  await run(60, () => 0);
  assert.equal(fakes.live("svc").length, 2, "down to min_replicas, no further");
  const report = await controller.apply(deployment({ svc: { autoscaling: { min_replicas: 4, max_replicas: 6 } } }));
  assert.equal(report.svc!.replicas, 4);
  assert.equal(fakes.serving("svc").length, 4);
  assert.deepEqual(decisions().at(-1)!.slice(1), [2, 4, "bounds"]);
  await assert.rejects(controller.scale("svc", 1), /service 'svc' is autoscaled \(min_replicas 4, max_replicas 6\)/);
});

test("the node's capacity caps the count, and the status says which resource stopped it", async () => {
  const small: NodeCapacity = { ...node, memoryMb: 1024 };
  const { fakes, controller, run, view } = setup({ node: small });
  await controller.apply(
    deployment({
      other: { deployment: { replicas: 2 }, resources: { memory_mb: 256 } },
      svc: { autoscaling: { ...RAY, max_replicas: 8, upscale_delay_s: 0 }, resources: { memory_mb: 256 } },
    }),
  );
  await run(30, () => 20);
  assert.equal(fakes.live("svc").length, 2, "512 MB left beside the other service: two replicas of 256 MB");
  assert.equal(view().wanted, 8);
  assert.equal(view().limited_by, "node memory: 2 replica(s) × 256 MB fit in the node's 1024 MB, 512 MB held by the other services");
});

test("scaling down drains the idle replicas and keeps the busy ones; none is killed mid-request", async () => {
  const { fakes, controller, clock, run, load, decisions } = setup({ autoStop: false });
  await controller.apply(
    deployment({ svc: { autoscaling: { ...RAY, upscale_delay_s: 0, downscale_delay_s: 20, look_back_period_s: 10 } } }),
  );
  await run(30, () => 8);
  assert.deepEqual(fakes.serving("svc"), ["svc-0", "svc-1", "svc-2", "svc-3"]);
  // One request still running on svc-1 and on svc-3; svc-0 and svc-2 idle: 1 replica wanted.
  for (let t = 0; t < 60 && fakes.inPhase("stopping").length === 0; t++) {
    load(0);
    fakes.registry.get("svc-1")!.load = { in_flight: 1, queue_depth: 0 };
    fakes.registry.get("svc-3")!.load = { in_flight: 1, queue_depth: 0 };
    await clock.advance(1_000);
  }
  assert.deepEqual(decisions().at(-1)!.slice(1), [4, 1, "load_below_target"]);
  // Three leave: the idle ones, then the busy one in the higher slot; each drains (it is stopping
  // until its requests are done), none is killed.
  assert.deepEqual(
    fakes
      .inPhase("stopping")
      .map((r) => r.spec.replicaId)
      .sort(),
    ["svc-0", "svc-2", "svc-3"],
  );
  assert.deepEqual(fakes.serving("svc"), ["svc-1"]);
  assert.equal(fakes.inPhase("exited").length, 0, "nothing killed");
});

test("scaling down takes replicas that are still starting before any that serves", async () => {
  const { fakes, controller, clock, load } = setup({ autoReady: false });
  const done = controller.apply(
    deployment({ svc: { autoscaling: { ...RAY, upscale_delay_s: 0, downscale_delay_s: 0, look_back_period_s: 10 } } }),
  );
  await settle();
  fakes.get("svc-0").ready();
  await done;
  load(8);
  await clock.advance(10_000);
  assert.deepEqual(fakes.live("svc"), ["svc-0", "svc-1", "svc-2", "svc-3"]);
  fakes.get("svc-2").ready(); // svc-1 and svc-3 are still starting
  load(0);
  await clock.advance(10_000);
  const stopped = fakes.events.filter((e) => e.endsWith(" stopping")).map((e) => e.split(" ")[0]);
  assert.deepEqual(stopped.slice(0, 2).sort(), ["svc-1", "svc-3"], "the starting ones leave first");
  assert.deepEqual(stopped[2], "svc-2", "then the idle one in the higher slot");
  assert.deepEqual(fakes.live("svc"), ["svc-0"]);
});

test("scale to zero: the service goes cold, a request waits at the API server, wakes it at once and is let through", async () => {
  const { fakes, coldStarts, controller, run, clock, view, decisions } = setup();
  await controller.apply(deployment({ svc: { autoscaling: { ...RAY, min_replicas: 0, downscale_delay_s: 60 } } }));
  assert.deepEqual(fakes.serving("svc"), ["svc-0"], "one replica until the API server knows what the service serves");
  assert.equal(coldStarts.knows("svc"), true, "learnt from its registration");
  await run(80, () => 0);
  assert.deepEqual(fakes.live("svc"), [], "no traffic for downscale_delay_s: zero replicas");
  assert.deepEqual(decisions().at(-1)!.slice(1), [1, 0, "load_below_target"]);
  assert.deepEqual(coldStarts.describe(), [{ service: "svc", state: "cold", capabilities: [{ type: "fake", svc: "svc" }], waiting: 0 }]);
  assert.equal(coldStarts.serviceFor({ type: "fake" }), "svc");

  // A request for it waits; the controller starts a replica at once (no upscale delay from zero).
  const waited = coldStarts.wait("svc", { type: "fake" }, 30_000, new Cancellation());
  let released = false;
  void waited.then(() => (released = true));
  assert.equal(coldStarts.waiting("svc"), 1);
  await settle();
  assert.deepEqual(decisions().at(-1)!.slice(1), [0, 1, "request_while_cold"]);
  assert.deepEqual(fakes.serving("svc"), ["svc-0-r2"], "a new replica, at once");
  await waited;
  assert.equal(released, true);
  assert.equal(coldStarts.stats().get("svc")!.count, 1, "one cold start timed");
  assert.equal(view().desired, 1);
  await clock.advance(1);
});

test("a request for a cold service is refused at once when its queue is full, and gives up at its deadline", async () => {
  const { fakes, coldStarts, controller, run } = setup({ autoReady: false });
  const applied = controller.apply(
    deployment({ svc: { autoscaling: { ...RAY, min_replicas: 0, downscale_delay_s: 0 }, performance: { queue_size: 2 } } }),
  );
  await settle();
  fakes.get("svc-0").ready();
  await applied;
  await run(20, () => 0);
  assert.deepEqual(fakes.live("svc"), []);
  const cancel = new Cancellation();
  const first = coldStarts.wait("svc", { type: "fake" }, 60_000, cancel);
  const second = coldStarts.wait("svc", { type: "fake" }, 50, new Cancellation());
  await assert.rejects(coldStarts.wait("svc", { type: "fake" }, 60_000, new Cancellation()), (err: { code: string; data: unknown }) => {
    assert.equal(err.code, "QUEUE_FULL");
    assert.deepEqual(err.data, { retry_after_s: 1 });
    return true;
  });
  await assert.rejects(second, (err: { code: string; message: string }) => {
    assert.equal(err.code, "DEADLINE_EXCEEDED");
    assert.equal(
      err.message,
      "no replica of service 'svc' (scaled to zero) could take {type=fake} within the request's 50 ms: a replica is starting",
    );
    return true;
  });
  cancel.abort();
  await assert.rejects(first, (err: { code: string }) => err.code === "CANCELLED");
  assert.equal(coldStarts.waiting("svc"), 0);
});
