// Gateway balancing strategies: round_robin, random, least_requests, consistent_hash, and the factory.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BALANCING } from "../../src/config/schema.js";
import {
  BALANCER_NAMES,
  ConsistentHashBalancer,
  createBalancer,
  LeastRequestsBalancer,
  PowerOfTwoBalancer,
  RandomBalancer,
  RoundRobinBalancer,
} from "../../src/routing/balancers/index.js";
import type { ReplicaEntry } from "../../src/routing/registry.js";
import { rng } from "../helpers/http-fuzz.js";

let nextOrder = 0;
function entry(replicaId: string, inFlight = 0): ReplicaEntry {
  return { replicaId, inFlight, order: nextOrder++, available: true } as unknown as ReplicaEntry;
}
function entries(n: number, prefix = "r"): ReplicaEntry[] {
  return Array.from({ length: n }, (_, i) => entry(`${prefix}${i}`));
}
function tally(picks: Iterable<ReplicaEntry>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of picks) counts.set(e.replicaId, (counts.get(e.replicaId) ?? 0) + 1);
  return counts;
}
function keys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `user-${i}`);
}

test("BALANCER_NAMES lists exactly the strategies the deploy schema accepts", () => {
  assert.deepEqual([...BALANCER_NAMES].sort(), [
    "consistent_hash",
    "first_available",
    "least_requests",
    "power_of_two",
    "random",
    "round_robin",
  ]);
  assert.deepEqual([...BALANCER_NAMES].sort(), [...BALANCING].sort());
});

test("createBalancer builds each named strategy, power_of_two by default", () => {
  for (const name of BALANCER_NAMES) assert.equal(createBalancer(name).name, name);
  assert.equal(createBalancer().name, "power_of_two");
  assert.ok(createBalancer() instanceof PowerOfTwoBalancer);
  // Each call gets its own instance (strategies keep per-instance state).
  assert.notEqual(createBalancer("round_robin"), createBalancer("round_robin"));
});

test("createBalancer rejects an unknown name with a TypeError listing the valid names", () => {
  for (const bad of ["nope", "constructor", "toString", ""]) {
    assert.throws(
      () => createBalancer(bad),
      (err: unknown) => {
        assert.ok(err instanceof TypeError);
        for (const name of BALANCER_NAMES) assert.match(err.message, new RegExp(name));
        return true;
      },
    );
  }
});

test("round_robin: 300 picks over 3 stable candidates give exactly 100 each, in turn", () => {
  const b = new RoundRobinBalancer();
  const c = entries(3);
  const picks = Array.from({ length: 300 }, () => b.pick(c));
  assert.deepEqual([...tally(picks).values()], [100, 100, 100]);
  assert.deepEqual(
    picks.slice(0, 6).map((e) => e.replicaId),
    ["r0", "r1", "r2", "r0", "r1", "r2"],
  );
});

test("round_robin: a single candidate and a shrinking list are handled", () => {
  const b = new RoundRobinBalancer();
  const c = entries(3);
  assert.equal(b.pick(c.slice(0, 1)), c[0]);
  for (let i = 0; i < 10; i++) assert.ok(c.slice(0, 2).includes(b.pick(c.slice(0, 2))));
});

test("random: roughly uniform over 3000 picks with Math.random", () => {
  const b = new RandomBalancer();
  const c = entries(3);
  const counts = tally(Array.from({ length: 3000 }, () => b.pick(c)));
  assert.equal(counts.size, 3);
  for (const [id, n] of counts) assert.ok(n >= 850 && n <= 1150, `${id}: ${n} of 3000`);
});

test("random: deterministic with an injected rand", () => {
  const c = entries(4);
  const run = () => {
    const b = new RandomBalancer(rng(42));
    return Array.from({ length: 50 }, () => b.pick(c).replicaId);
  };
  assert.deepEqual(run(), run());
  const fixed = [0, 0.25, 0.5, 0.99, 0.3];
  let i = 0;
  const b = new RandomBalancer(() => fixed[i++ % fixed.length]!);
  assert.deepEqual(
    Array.from({ length: 5 }, () => b.pick(c).replicaId),
    ["r0", "r1", "r2", "r3", "r1"],
  );
  // A source that returns exactly 1 still yields a candidate.
  assert.equal(new RandomBalancer(() => 1).pick(c), c[3]);
});

test("least_requests: picks the candidate with the fewest in flight, whatever the rotation", () => {
  const b = new LeastRequestsBalancer();
  const c = [entry("a", 3), entry("b", 1), entry("c", 2), entry("d", 7)];
  for (let i = 0; i < 20; i++) assert.equal(b.pick(c).replicaId, "b");
  c[0]!.inFlight = 0;
  for (let i = 0; i < 20; i++) assert.equal(b.pick(c).replicaId, "a");
});

test("least_requests: equal replicas share the load instead of the first taking all", () => {
  const b = new LeastRequestsBalancer();
  const c = entries(3);
  assert.deepEqual([...tally(Array.from({ length: 300 }, () => b.pick(c))).values()], [100, 100, 100]);

  const mixed = [entry("x", 0), entry("busy", 5), entry("y", 0)];
  const counts = tally(Array.from({ length: 300 }, () => b.pick(mixed)));
  assert.equal(counts.get("busy"), undefined);
  assert.ok((counts.get("x") ?? 0) >= 90 && (counts.get("y") ?? 0) >= 90, JSON.stringify([...counts]));
});

test("least_requests: follows in-flight counts as they change", () => {
  const b = new LeastRequestsBalancer();
  const c = entries(4);
  // Simulate requests that never finish: each pick adds one in flight, so picks stay level.
  for (let i = 0; i < 40; i++) b.pick(c).inFlight++;
  assert.deepEqual(
    c.map((e) => e.inFlight),
    [10, 10, 10, 10],
  );
});

test("consistent_hash: the same key always maps to the same replica, whatever the candidate order", () => {
  const b = new ConsistentHashBalancer();
  const c = entries(5);
  const reversed = [...c].reverse();
  const other = new ConsistentHashBalancer();
  for (const key of keys(200)) {
    const first = b.pick(c, { key });
    for (let i = 0; i < 3; i++) assert.equal(b.pick(c, { key }), first);
    assert.equal(b.pick(reversed, { key }), first);
    // Another instance (another gateway) agrees, and so do fresh entry objects with the same ids.
    assert.equal(other.pick(c, { key }).replicaId, first.replicaId);
  }
  const fresh = c.map((e) => entry(e.replicaId, 9));
  for (const key of keys(50)) assert.equal(b.pick(fresh, { key }).replicaId, b.pick(c, { key }).replicaId);
});

test("consistent_hash: 1000 keys over 4 replicas are each within 15-35 %", () => {
  const b = new ConsistentHashBalancer();
  const c = entries(4, "replica-");
  const counts = tally(keys(1000).map((key) => b.pick(c, { key })));
  assert.equal(counts.size, 4);
  for (const [id, n] of counts) assert.ok(n >= 150 && n <= 350, `${id}: ${n} of 1000`);
});

test("consistent_hash: removing a replica moves only the keys that were on it", () => {
  const b = new ConsistentHashBalancer();
  const c = entries(4, "replica-");
  const before = new Map(keys(1000).map((key) => [key, b.pick(c, { key }).replicaId]));
  const gone = c[2]!.replicaId;
  const remaining = c.filter((e) => e.replicaId !== gone);
  let moved = 0;
  for (const [key, was] of before) {
    const now = b.pick(remaining, { key }).replicaId;
    if (was === gone) {
      assert.notEqual(now, gone);
      moved++;
    } else {
      assert.equal(now, was, `key ${key} moved from ${was} to ${now}`);
    }
  }
  assert.ok(moved > 0);
});

test("consistent_hash: adding a 5th replica moves about 1/5 of the keys, all to the new one", () => {
  const b = new ConsistentHashBalancer();
  const c = entries(4, "replica-");
  const added = [...c, entry("replica-4")];
  let moved = 0;
  for (const key of keys(1000)) {
    const was = b.pick(c, { key }).replicaId;
    const now = b.pick(added, { key }).replicaId;
    if (now !== was) {
      assert.equal(now, "replica-4");
      moved++;
    }
  }
  assert.ok(moved >= 100 && moved <= 300, `moved ${moved} of 1000`);
});

test("consistent_hash: no key falls back to power-of-two without throwing", () => {
  const c = [entry("a", 5), entry("b", 1), entry("c", 3)];
  const b = new ConsistentHashBalancer(rng(7));
  const p2 = new PowerOfTwoBalancer(rng(7));
  for (let i = 0; i < 50; i++) {
    const ctx = i % 2 === 0 ? undefined : {};
    assert.equal(b.pick(c, ctx), p2.pick(c));
  }
  const dflt = new ConsistentHashBalancer();
  for (let i = 0; i < 50; i++) {
    const picked = dflt.pick(c);
    assert.ok(c.includes(picked));
    assert.notEqual(picked.replicaId, "a"); // power-of-two never picks the busiest of three
  }
  assert.equal(dflt.pick(c.slice(0, 1)), c[0]);
  assert.equal(dflt.pick(c.slice(0, 1), { key: "k" }), c[0]);
});

test("first_available: always the first candidate (the seed's load_balancing: false)", () => {
  const b = createBalancer("first_available");
  const list = [
    { replicaId: "a", inFlight: 9 },
    { replicaId: "b", inFlight: 0 },
  ] as unknown as Parameters<typeof b.pick>[0];
  for (let i = 0; i < 10; i++) assert.equal(b.pick(list).replicaId, "a");
});
