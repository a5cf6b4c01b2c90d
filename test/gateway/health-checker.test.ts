// The API server's health checker on its own: a real registry and service policies, a fake probe
// (its answers scripted by the test) and a clock the test moves. Probes are started by calling
// probeDue() as the checker's timer does, so "not due yet" is exact, not a matter of timing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ongoingAt } from "../../src/deploy/registry-readings.js";
import { HealthChecker, RETRY_AFTER_FAILURE_MS, UNHEALTHY_AFTER } from "../../src/gateway/health-checker.js";
import { ServicePolicies } from "../../src/gateway/policies.js";
import { countSent, Registry, type ReplicaEntry } from "../../src/routing/registry.js";
import { silentLogger } from "../../src/util/logger.js";
import { waitFor } from "../helpers/processes.js";

const HEARTBEAT_MS = 5_000;

const REPORT = { ready: true, load: { in_flight: 2, queue_depth: 1 } };

/** A probe whose outcome for each replica is what the test last set (`pass` unless told otherwise). */
class FakeProbe {
  readonly calls: { replicaId: string; timeoutMs: number }[] = [];
  /** Replica id → "pass", "fail" or "hang" (answers only when the test calls `answerHanging`). */
  readonly outcome = new Map<string, "pass" | "fail" | "hang">();
  #hanging: (() => void)[] = [];

  readonly probe = (entry: ReplicaEntry, timeoutMs: number): Promise<Record<string, unknown>> => {
    this.calls.push({ replicaId: entry.replicaId, timeoutMs });
    const o = this.outcome.get(entry.replicaId) ?? "pass";
    if (o === "fail") return Promise.reject(new Error("replica not ready: draining"));
    if (o === "hang") return new Promise((resolve) => this.#hanging.push(() => resolve(REPORT)));
    return Promise.resolve(REPORT);
  };

  count(replicaId: string): number {
    return this.calls.filter((c) => c.replicaId === replicaId).length;
  }

  answerHanging(): void {
    for (const f of this.#hanging.splice(0)) f();
  }
}

/** One turn of the event loop: a settled probe's result is recorded by then. */
const recorded = () => new Promise((r) => setImmediate(r));

function setup(policy?: (p: ServicePolicies) => void) {
  let t = 1_000_000;
  const clock = {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
  const registry = new Registry({ now: clock.now });
  const policies = new ServicePolicies();
  policy?.(policies);
  const fake = new FakeProbe();
  const checker = new HealthChecker({ registry, policies, probe: fake.probe, logger: silentLogger, now: clock.now });
  const add = (replicaId: string, service?: string) =>
    registry.register({
      replicaId,
      endpoint: "127.0.0.1:1",
      httpEndpoint: `http://127.0.0.1:1/${replicaId}`,
      capabilities: [{ capability: { type: "x" }, state: "warm" }],
      heartbeatIntervalMs: HEARTBEAT_MS,
      ...(service ? { service } : {}),
    });
  /** What the checker's timer does once: starts the probes due now (returns how many); then their results are recorded. */
  const round = async () => {
    const before = fake.calls.length;
    checker.probeDue();
    await recorded();
    return fake.calls.length - before;
  };
  return { clock, registry, policies, fake, checker, add, round };
}

test(`${UNHEALTHY_AFTER} failed probes in a row take a replica out of rotation; one passing probe brings it back`, async () => {
  const { clock, registry, fake, add, round } = setup();
  const entry = add("r1");
  assert.equal(UNHEALTHY_AFTER, 3);
  fake.outcome.set("r1", "fail");
  // Two failures, a pass, then two more: never three in a row, still healthy.
  for (const o of ["fail", "fail", "pass", "fail", "fail"] as const) {
    fake.outcome.set("r1", o);
    assert.equal(await round(), 1);
    assert.equal(entry.healthy, true, `after a ${o}`);
    clock.advance(HEARTBEAT_MS);
  }
  assert.equal(entry.probeFailures, 2);
  assert.match(entry.probeError ?? "", /replica not ready: draining/);
  fake.outcome.set("r1", "fail");
  await round();
  assert.equal(entry.healthy, false, "the third failure in a row");
  assert.equal(entry.probeFailures, 3);
  assert.deepEqual(
    registry.lookupAvailable({ type: "x" }).map((e) => e.replicaId),
    [],
    "out of rotation",
  );
  clock.advance(HEARTBEAT_MS);
  await round();
  assert.equal(entry.healthy, false, "more failures keep it out");
  fake.outcome.set("r1", "pass");
  clock.advance(HEARTBEAT_MS);
  await round();
  assert.equal(entry.healthy, true, "one pass brings it back");
  assert.equal(entry.probeFailures, 0);
  assert.equal(entry.probeError, undefined);
  assert.deepEqual(entry.load, { in_flight: 2, queue_depth: 1 }, "the load the replica reported is kept");
  assert.deepEqual(
    registry.lookupAvailable({ type: "x" }).map((e) => e.replicaId),
    ["r1"],
  );
});

test("each replica is probed at its service's health_check_interval, else at its heartbeat interval; a new one at once", async () => {
  const { clock, fake, checker, add, round } = setup((p) =>
    p.set("fast", { load_balancing: true, failover_enabled: false, health_check_interval: 1 }),
  );
  const fast = add("f1", "fast");
  const plain = add("p1", "other");
  assert.deepEqual([checker.intervalOf(fast), checker.intervalOf(plain)], [1_000, HEARTBEAT_MS]);
  assert.equal(await round(), 2, "both new replicas probed at once");
  clock.advance(999);
  assert.equal(await round(), 0, "nothing due 999 ms later");
  clock.advance(1);
  assert.equal(await round(), 1);
  assert.deepEqual([fake.count("f1"), fake.count("p1")], [2, 1]);
  for (let i = 0; i < 4; i++) {
    clock.advance(1_000);
    await round();
  }
  assert.deepEqual([fake.count("f1"), fake.count("p1")], [6, 2], "5 s: five more probes of f1, the first repeat of p1");
  // A probe may take its whole period, but at least 1 s and at most 2 s.
  assert.deepEqual([...new Set(fake.calls.map((c) => `${c.replicaId}:${c.timeoutMs}`))].sort(), ["f1:1000", "p1:2000"]);
});

test(`after a failed probe the next comes ${RETRY_AFTER_FAILURE_MS} ms later, not a whole interval: a stopped replica is out within seconds`, async () => {
  const { clock, fake, add, round } = setup();
  const entry = add("r1");
  assert.equal(await round(), 1, "probed at once");
  fake.outcome.set("r1", "fail");
  clock.advance(HEARTBEAT_MS);
  assert.equal(await round(), 1, "the first failure, at the interval");
  for (let failures = 2; failures <= UNHEALTHY_AFTER; failures++) {
    clock.advance(RETRY_AFTER_FAILURE_MS - 1);
    assert.equal(await round(), 0, "not before the retry time");
    clock.advance(1);
    assert.equal(await round(), 1, `failure ${failures}, ${RETRY_AFTER_FAILURE_MS} ms after the previous one`);
  }
  assert.equal(entry.healthy, false, `unhealthy ${(UNHEALTHY_AFTER - 1) * RETRY_AFTER_FAILURE_MS} ms after its first failed probe`);
  // Passing again: back to the interval.
  fake.outcome.set("r1", "pass");
  clock.advance(RETRY_AFTER_FAILURE_MS);
  assert.equal(await round(), 1);
  assert.equal(entry.healthy, true);
  clock.advance(RETRY_AFTER_FAILURE_MS);
  assert.equal(await round(), 0, "after a pass, the next probe waits the whole interval");
});

test("a probe still running is not started again; a replica gone meanwhile is forgotten", async () => {
  const { clock, registry, fake, add, round } = setup();
  add("r1");
  fake.outcome.set("r1", "hang");
  assert.equal(await round(), 1);
  clock.advance(3 * HEARTBEAT_MS);
  assert.equal(await round(), 0, "the first probe has not answered");
  registry.unregister("r1");
  fake.outcome.set("r1", "pass");
  fake.answerHanging();
  await recorded();
  assert.equal(registry.get("r1"), undefined, "its late answer does not bring it back");
  const again = add("r1");
  assert.equal(await round(), 1, "registered again: probed at once");
  assert.equal(again.healthy, true);
});

test("start() probes on its timer; stop() stops it", async () => {
  /** A checker on real timers (a 2 ms tick, a 1 ms probe interval) with one replica, started and probed three times. */
  const running = async (replicaId: string) => {
    const h = setup((p) => p.set("s", { load_balancing: true, failover_enabled: false, health_check_interval: 0.001 }));
    h.add(replicaId, "s");
    const checker = new HealthChecker({ registry: h.registry, policies: h.policies, probe: h.fake.probe, logger: silentLogger, tickMs: 2 });
    checker.start();
    await waitFor(`three probes of ${replicaId} on the timer`, () => h.fake.count(replicaId) >= 3, 5_000, 1);
    return { checker, count: () => h.fake.count(replicaId) };
  };
  const a = await running("r1");
  a.checker.stop();
  const stoppedAt = a.count();
  // A witness checker on the same tick, started after the stop: by the time it has probed three
  // times, the stopped one's timer — earlier in the same timer list — would have fired as often.
  const witness = await running("w1");
  witness.checker.stop();
  assert.equal(a.count(), stoppedAt, "no probe after stop()");
});

test("a load report's requests from elsewhere are measured against the most in flight while the probe was out, not the count when it came", async () => {
  const { clock, registry, fake, checker, add } = setup();
  const entry = add("r1");
  for (let i = 0; i < 3; i++) countSent(entry);
  fake.outcome.set("r1", "hang");
  checker.probeDue();
  // The replica counts its 3 requests (REPORT: 2 running + 1 queued); two of them are answered
  // before its report arrives, and one more is sent.
  entry.inFlight -= 2;
  countSent(entry);
  fake.answerHanging();
  await recorded();
  assert.deepEqual(entry.load, { in_flight: 2, queue_depth: 1 });
  assert.equal(entry.loadInFlight, 3, "the peak while the probe was out");
  // What the autoscaler counts: in flight now (2) + the report beyond the peak (none).
  assert.equal(ongoingAt(registry, "r1"), 2, "the two answered requests are not counted as requests from elsewhere");
  // The next probe's window starts from the count at its start.
  fake.outcome.set("r1", "pass");
  entry.inFlight = 0;
  clock.advance(HEARTBEAT_MS);
  checker.probeDue();
  await recorded();
  assert.equal(entry.loadInFlight, 0);
});
