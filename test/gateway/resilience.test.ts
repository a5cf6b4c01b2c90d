// Failover building blocks: retry budget, outlier detector, circuit breakers (fake clock throughout).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CircuitBreakers } from "../../src/gateway/resilience/circuit-breaker.js";
import { OutlierDetector } from "../../src/gateway/resilience/outlier-detector.js";
import { RetryBudget } from "../../src/gateway/resilience/retry-budget.js";
import { ERROR_CATALOGUE, type ErrorCode } from "../../src/errors.js";
import { NOT_REPLICA_FAILURES, isCircuitFailure, isReplicaFault } from "../../src/routing/outcome.js";

/** A fake clock: read with `now`, moved by assigning `clock.t`. */
function fakeClock(start = 1_000_000) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describe("RetryBudget", () => {
  test("defaults: an idle budget admits minPerSecond * windowSec = 100 retries", () => {
    const clock = fakeClock();
    const b = new RetryBudget({ now: clock.now });
    assert.deepEqual(b.snapshot(), { requests: 0, retries: 0, allowed: 100 });
    let granted = 0;
    while (b.tryRetry()) granted++;
    assert.equal(granted, 100);
    assert.deepEqual(b.snapshot(), { requests: 0, retries: 100, allowed: 100 });
  });

  test("total outage: granted retries <= ratio*N + minPerSecond*windowSec", () => {
    for (const n of [0, 1, 7, 100, 999, 5000]) {
      const clock = fakeClock();
      const b = new RetryBudget({ now: clock.now });
      const start = clock.t;
      let granted = 0;
      for (let i = 0; i < n; i++) {
        clock.t = start + Math.floor((i * 10_000) / Math.max(n, 1)); // spread over the window
        b.recordRequest();
        for (let attempt = 0; attempt < 2; attempt++) {
          if (!b.tryRetry()) break;
          granted++;
        }
      }
      const bound = 0.2 * n + 10 * 10;
      assert.ok(granted <= bound, `n=${n}: granted ${granted} > bound ${bound}`);
      assert.equal(b.snapshot().retries, granted);
      assert.equal(b.snapshot().requests, n);
      // the budget is actually used up, not merely under-granting
      if (n >= 1000) assert.ok(granted >= Math.floor(bound) - 1, `n=${n}: granted only ${granted}`);
    }
  });

  test("fractional ratios honour the bound too", () => {
    const clock = fakeClock();
    const b = new RetryBudget({ ratio: 0.3, minPerSecond: 0, windowMs: 1000, now: clock.now });
    let granted = 0;
    for (let i = 0; i < 7; i++) {
      b.recordRequest();
      if (b.tryRetry()) granted++;
    }
    assert.equal(granted, 2); // 0.3 * 7 = 2.1
    assert.equal(b.snapshot().allowed, 2);
  });

  test("healthy system: every retry is granted", () => {
    const clock = fakeClock();
    const b = new RetryBudget({ now: clock.now });
    const start = clock.t;
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      clock.t = start + Math.floor((i * 10_000) / n);
      b.recordRequest();
      if (i % 10 === 0) assert.equal(b.tryRetry(), true, `retry for request ${i} denied`);
    }
    assert.equal(b.snapshot().retries, 1000);
  });

  test("old buckets expire: past windowMs the budget is fresh", () => {
    const clock = fakeClock();
    const b = new RetryBudget({ now: clock.now });
    while (b.tryRetry());
    assert.equal(b.tryRetry(), false);
    clock.t += 10_000;
    assert.deepEqual(b.snapshot(), { requests: 0, retries: 0, allowed: 100 });
    assert.equal(b.tryRetry(), true);
  });

  test("the window slides bucket by bucket", () => {
    const clock = fakeClock(0);
    const b = new RetryBudget({ ratio: 1, minPerSecond: 0, windowMs: 1000, now: clock.now });
    b.recordRequest(); // bucket 0
    clock.t = 500;
    b.recordRequest(); // bucket 5
    assert.equal(b.snapshot().requests, 2);
    clock.t = 999;
    assert.equal(b.snapshot().requests, 2);
    clock.t = 1000; // bucket 0 leaves the window
    assert.equal(b.snapshot().requests, 1);
    clock.t = 1499;
    assert.equal(b.snapshot().requests, 1);
    clock.t = 1500; // bucket 5 leaves
    assert.equal(b.snapshot().requests, 0);
  });

  test("rejects invalid options", () => {
    assert.throws(() => new RetryBudget({ windowMs: 0 }), RangeError);
    assert.throws(() => new RetryBudget({ ratio: -1 }), RangeError);
  });
});

describe("OutlierDetector", () => {
  const PEERS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];

  test("ejects after exactly 5 consecutive failures", () => {
    const clock = fakeClock();
    const d = new OutlierDetector({ now: clock.now });
    for (let i = 0; i < 4; i++) assert.equal(d.onFailure("a", PEERS), false);
    assert.equal(d.isEjected("a"), false);
    assert.equal(d.ejectedCount, 0);
    assert.equal(d.onFailure("a", PEERS), true);
    assert.equal(d.isEjected("a"), true);
    assert.equal(d.ejectedCount, 1);
    assert.deepEqual(d.snapshot("a"), { consecutive_failures: 5, ejected_until: clock.t + 30_000, times_ejected: 1 });
  });

  test("a success in between resets the count", () => {
    const clock = fakeClock();
    const d = new OutlierDetector({ now: clock.now });
    for (let i = 0; i < 4; i++) d.onFailure("a", PEERS);
    d.onSuccess("a");
    assert.equal(d.snapshot("a").consecutive_failures, 0);
    for (let i = 0; i < 4; i++) assert.equal(d.onFailure("a", PEERS), false);
    assert.equal(d.isEjected("a"), false);
    assert.equal(d.onFailure("a", PEERS), true);
  });

  test("onSuccess of a replica that never failed creates no state", () => {
    const d = new OutlierDetector({ now: fakeClock().now });
    d.onSuccess("x");
    assert.deepEqual(d.snapshot("x"), { consecutive_failures: 0, ejected_until: null, times_ejected: 0 });
    assert.equal(d.isEjected("x"), false);
  });

  test("re-admission after the ejection time; the second ejection lasts 2x the first", () => {
    const clock = fakeClock();
    const d = new OutlierDetector({ now: clock.now });
    for (let i = 0; i < 5; i++) d.onFailure("a", PEERS);
    clock.t += 29_999;
    assert.equal(d.isEjected("a"), true);
    clock.t += 1;
    assert.equal(d.isEjected("a"), false); // re-admitted lazily
    assert.equal(d.ejectedCount, 0);
    assert.deepEqual(d.snapshot("a"), { consecutive_failures: 0, ejected_until: null, times_ejected: 1 });

    for (let i = 0; i < 4; i++) assert.equal(d.onFailure("a", PEERS), false);
    assert.equal(d.onFailure("a", PEERS), true);
    assert.equal(d.snapshot("a").ejected_until, clock.t + 60_000);
    assert.equal(d.snapshot("a").times_ejected, 2);
    clock.t += 59_999;
    assert.equal(d.isEjected("a"), true);
    clock.t += 1;
    assert.equal(d.isEjected("a"), false);
  });

  test("ejection length is capped at maxEjectionMs", () => {
    const clock = fakeClock();
    const d = new OutlierDetector({ consecutiveFailures: 1, baseEjectionMs: 100, maxEjectionMs: 250, now: clock.now });
    const lengths: number[] = [];
    for (let k = 0; k < 4; k++) {
      assert.equal(d.onFailure("a", PEERS), true);
      const until = d.snapshot("a").ejected_until!;
      lengths.push(until - clock.t);
      clock.t = until; // re-admitted right away, so no decay
    }
    assert.deepEqual(lengths, [100, 200, 250, 250]);
  });

  test("timesEjected decays after maxEjectionMs without a new ejection", () => {
    const clock = fakeClock();
    const d = new OutlierDetector({ now: clock.now });
    for (let i = 0; i < 5; i++) d.onFailure("a", PEERS);
    clock.t += 30_000; // ejection ends
    assert.equal(d.isEjected("a"), false);
    clock.t += 299_999;
    assert.equal(d.snapshot("a").times_ejected, 1);
    clock.t += 1;
    assert.equal(d.snapshot("a").times_ejected, 0);
    for (let i = 0; i < 5; i++) d.onFailure("a", PEERS);
    assert.equal(d.snapshot("a").ejected_until, clock.t + 30_000); // back to the base length
  });

  test("failures reported while ejected are ignored", () => {
    const clock = fakeClock();
    const d = new OutlierDetector({ now: clock.now });
    for (let i = 0; i < 5; i++) d.onFailure("a", PEERS);
    const until = d.snapshot("a").ejected_until;
    for (let i = 0; i < 10; i++) assert.equal(d.onFailure("a", PEERS), false);
    assert.equal(d.snapshot("a").ejected_until, until);
    assert.equal(d.snapshot("a").times_ejected, 1);
  });

  test("never ejects the last non-ejected peer: 2 peers both failing, only one ejected", () => {
    const clock = fakeClock();
    const d = new OutlierDetector({ now: clock.now, maxEjectionPercent: 100 });
    const peers = ["a", "b"];
    for (let i = 0; i < 5; i++) d.onFailure("a", peers);
    assert.equal(d.isEjected("a"), true);
    for (let i = 0; i < 20; i++) assert.equal(d.onFailure("b", peers), false);
    assert.equal(d.isEjected("b"), false);
    assert.equal(d.ejectedCount, 1);
    assert.equal(d.snapshot("b").consecutive_failures, 20); // keeps counting
    // once a is back, b's next failure ejects it (and a is then the last one standing)
    clock.t += 30_000;
    assert.equal(d.onFailure("b", peers), true);
    assert.equal(d.isEjected("b"), true);
    assert.equal(d.isEjected("a"), false);
  });

  test("a single replica is never ejected", () => {
    const d = new OutlierDetector({ now: fakeClock().now });
    for (let i = 0; i < 50; i++) assert.equal(d.onFailure("solo", ["solo"]), false);
    assert.equal(d.ejectedCount, 0);
  });

  test("with 3 peers at 10 % only 1 is ejected", () => {
    const d = new OutlierDetector({ now: fakeClock().now });
    const peers = ["a", "b", "c"];
    let ejections = 0;
    for (let i = 0; i < 10; i++) for (const id of peers) if (d.onFailure(id, peers)) ejections++;
    assert.equal(ejections, 1);
    assert.equal(d.ejectedCount, 1);
  });

  test("the percentage limit scales with the peer count (20 peers at 10 % -> 2)", () => {
    const d = new OutlierDetector({ now: fakeClock().now });
    const peers = Array.from({ length: 20 }, (_, i) => `r${i}`);
    for (let i = 0; i < 5; i++) for (const id of peers) d.onFailure(id, peers);
    assert.equal(d.ejectedCount, 2);
  });

  test("ejectedCount accounts for lazily expired ejections", () => {
    const clock = fakeClock();
    const d = new OutlierDetector({ now: clock.now, maxEjectionPercent: 50 });
    const peers = ["a", "b", "c", "d"];
    for (let i = 0; i < 5; i++) d.onFailure("a", peers);
    clock.t += 10_000;
    for (let i = 0; i < 5; i++) d.onFailure("b", peers);
    assert.equal(d.ejectedCount, 2);
    clock.t += 20_000; // a's ejection is over, b's is not; nobody asked isEjected
    assert.equal(d.ejectedCount, 1);
    clock.t += 10_000;
    assert.equal(d.ejectedCount, 0);
  });

  test("forget drops all state", () => {
    const d = new OutlierDetector({ now: fakeClock().now });
    for (let i = 0; i < 5; i++) d.onFailure("a", PEERS);
    assert.equal(d.ejectedCount, 1);
    d.forget("a");
    assert.equal(d.ejectedCount, 0);
    assert.equal(d.isEjected("a"), false);
    assert.deepEqual(d.snapshot("a"), { consecutive_failures: 0, ejected_until: null, times_ejected: 0 });
  });
});

describe("CircuitBreakers", () => {
  const CAP = "type=chat";

  test("opens at >= 50 % failures only once 20 requests were seen", () => {
    const clock = fakeClock();
    const cb = new CircuitBreakers({ now: clock.now });
    for (let i = 0; i < 19; i++) cb.record("r1", CAP, false); // 100 % failures, but only 19 requests
    assert.equal(cb.openCount, 0);
    assert.equal(cb.allows("r1", CAP), true);
    cb.record("r1", CAP, true); // 20th: 19/20 failures
    assert.equal(cb.openCount, 1);
    assert.equal(cb.allows("r1", CAP), false);
    assert.deepEqual(cb.snapshot("r1"), [{ capability: CAP, state: "open", requests: 20, failures: 19, opened_at: clock.t }]);
  });

  test("exactly 50 % opens, just under stays closed", () => {
    const cb = new CircuitBreakers({ now: fakeClock().now });
    for (let i = 0; i < 10; i++) cb.record("r1", "a", true);
    for (let i = 0; i < 9; i++) cb.record("r1", "a", false);
    cb.record("r1", "a", true); // 9/20 = 45 %
    assert.equal(cb.openCount, 0);
    cb.record("r1", "a", false); // 10/21 < 50 %
    assert.equal(cb.openCount, 0);
    cb.record("r1", "a", false); // 11/22 = 50 %
    assert.equal(cb.openCount, 1);
  });

  test("circuits are per (replica, capability)", () => {
    const cb = new CircuitBreakers({ now: fakeClock().now });
    for (let i = 0; i < 20; i++) cb.record("r1", "a", false);
    for (let i = 0; i < 20; i++) cb.record("r1", "b", true);
    assert.equal(cb.allows("r1", "a"), false);
    assert.equal(cb.allows("r1", "b"), true);
    assert.equal(cb.allows("r2", "a"), true);
    assert.equal(cb.allows("r2", "zzz"), true);
  });

  test("half-open trial lets exactly one request through; success closes with a fresh window", () => {
    const clock = fakeClock();
    const cb = new CircuitBreakers({ now: clock.now });
    for (let i = 0; i < 20; i++) cb.record("r1", CAP, false);
    clock.t += 9_999;
    assert.equal(cb.allows("r1", CAP), false);
    clock.t += 1;
    assert.equal(cb.allows("r1", CAP), true); // the trial
    assert.equal(cb.allows("r1", CAP), false);
    assert.equal(cb.allows("r1", CAP), false);
    assert.equal(cb.snapshot("r1")[0]!.state, "half_open");
    assert.equal(cb.openCount, 1); // half-open still counts
    cb.record("r1", CAP, true);
    assert.equal(cb.openCount, 0);
    assert.equal(cb.allows("r1", CAP), true);
    assert.deepEqual(cb.snapshot("r1"), [{ capability: CAP, state: "closed", requests: 0, failures: 0, opened_at: null }]);
  });

  test("a failed trial re-opens the circuit for another halfOpenMs", () => {
    const clock = fakeClock();
    const cb = new CircuitBreakers({ now: clock.now });
    for (let i = 0; i < 20; i++) cb.record("r1", CAP, false);
    clock.t += 10_000;
    assert.equal(cb.allows("r1", CAP), true);
    clock.t += 500;
    cb.record("r1", CAP, false);
    assert.equal(cb.snapshot("r1")[0]!.state, "open");
    assert.equal(cb.snapshot("r1")[0]!.opened_at, clock.t);
    assert.equal(cb.openCount, 1);
    clock.t += 9_999;
    assert.equal(cb.allows("r1", CAP), false);
    clock.t += 1;
    assert.equal(cb.allows("r1", CAP), true);
    assert.equal(cb.allows("r1", CAP), false);
  });

  test("a lost trial result lets another trial through after halfOpenMs", () => {
    const clock = fakeClock();
    const cb = new CircuitBreakers({ now: clock.now });
    for (let i = 0; i < 20; i++) cb.record("r1", CAP, false);
    clock.t += 10_000;
    assert.equal(cb.allows("r1", CAP), true);
    clock.t += 9_999;
    assert.equal(cb.allows("r1", CAP), false);
    clock.t += 1;
    assert.equal(cb.allows("r1", CAP), true);
  });

  test("results recorded while open are ignored", () => {
    const clock = fakeClock();
    const cb = new CircuitBreakers({ now: clock.now });
    for (let i = 0; i < 20; i++) cb.record("r1", CAP, false);
    for (let i = 0; i < 50; i++) cb.record("r1", CAP, true);
    assert.equal(cb.snapshot("r1")[0]!.state, "open");
    assert.equal(cb.allows("r1", CAP), false);
  });

  test("old failures slide out of the window", () => {
    const clock = fakeClock(0);
    const cb = new CircuitBreakers({ now: clock.now });
    for (let i = 0; i < 15; i++) cb.record("r1", CAP, false); // bucket 0
    clock.t = 60_000; // bucket 0 has left the 60 s window
    for (let i = 0; i < 5; i++) cb.record("r1", CAP, false);
    assert.equal(cb.openCount, 0);
    assert.equal(cb.snapshot("r1")[0]!.requests, 5);
    clock.t = 119_999; // the 5 (bucket 10) are still in the window of buckets 10..19
    assert.equal(cb.snapshot("r1")[0]!.requests, 5);
    clock.t = 120_000;
    assert.equal(cb.snapshot("r1")[0]!.requests, 0);
  });

  test("forget drops the replica's circuits and their open count", () => {
    const cb = new CircuitBreakers({ now: fakeClock().now });
    for (let i = 0; i < 20; i++) cb.record("r1", "a", false);
    for (let i = 0; i < 20; i++) cb.record("r1", "b", false);
    for (let i = 0; i < 20; i++) cb.record("r2", "a", false);
    assert.equal(cb.openCount, 3);
    cb.forget("r1");
    assert.equal(cb.openCount, 1);
    assert.deepEqual(cb.snapshot("r1"), []);
    assert.equal(cb.allows("r1", "a"), true);
    assert.equal(cb.allows("r2", "a"), false);
  });

  test("rejects invalid options", () => {
    assert.throws(() => new CircuitBreakers({ failureRatio: 0 }), RangeError);
    assert.throws(() => new CircuitBreakers({ windowMs: -1 }), RangeError);
  });
});

test("circuit blocks() agrees with allows() without taking the half-open trial", () => {
  let now = 0;
  const cb = new CircuitBreakers({ minRequests: 2, halfOpenMs: 100, now: () => now });
  assert.equal(cb.blocks("r", "k"), false);
  cb.record("r", "k", false);
  cb.record("r", "k", false);
  assert.equal(cb.blocks("r", "k"), true);
  now = 100;
  assert.equal(cb.blocks("r", "k"), false);
  assert.equal(cb.blocks("r", "k"), false, "peeking does not consume the trial");
  assert.equal(cb.allows("r", "k"), true);
  assert.equal(cb.blocks("r", "k"), true, "the trial is out");
  cb.record("r", "k", true);
  assert.equal(cb.blocks("r", "k"), false);
});

test("every 5xx code is decided: a replica failure for its circuit, or named as not one (shedding, resource limits, another hop)", () => {
  const fivexx = (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).filter((c) => ERROR_CATALOGUE[c].http >= 500);
  const undecided = fivexx.filter((c) => !isCircuitFailure(c) && !NOT_REPLICA_FAILURES.has(c));
  assert.deepEqual(undecided, [], "decide in src/routing/outcome.ts whether these say the replica is broken");
  for (const c of NOT_REPLICA_FAILURES) assert.equal(isCircuitFailure(c), false, c);
  // Resource answers are the replica answering correctly: neither a circuit failure nor an outlier fault.
  for (const c of ["OBJECT_STORE_FULL", "OBJECT_TOO_LARGE", "PAYLOAD_TOO_LARGE"] as const) {
    assert.equal(isCircuitFailure(c), false, c);
    assert.equal(isReplicaFault(c), false, c);
  }
  assert.equal(isCircuitFailure("WORKER_CRASHED"), true);
});
