// The registry behaviours the original system's tests checked: register, re-register, unregister,
// exact and subset lookups, exclude, random pick, the record's fields, concurrent registrations.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EXPIRY_FLOOR_MS, Registry, type ReplicaRegistration } from "../src/routing/registry.js";

const reg = (id: string, caps: Record<string, string>[], heartbeatIntervalMs = 1000): ReplicaRegistration => ({
  replicaId: id,
  endpoint: `localhost:${50000 + id.length}`,
  httpEndpoint: "http://127.0.0.1:1",
  capabilities: caps.map((capability) => ({ capability, state: "warm" as const })),
  heartbeatIntervalMs,
});

test("register stores a replica and keeps its 3 capabilities", () => {
  const r = new Registry();
  r.register(reg("a", [{ type: "chat" }, { type: "embed" }, { type: "heavy" }]));
  assert.equal(r.size, 1);
  assert.equal(r.get("a")!.capabilities.length, 3);
});

test("re-register with the same id replaces its capabilities", () => {
  const r = new Registry();
  r.register(reg("a", [{ type: "chat" }]));
  r.register(reg("a", [{ type: "embed" }]));
  assert.equal(r.size, 1);
  assert.deepEqual(r.lookup({ type: "chat" }), []);
  assert.equal(r.lookup({ type: "embed" })[0]!.replicaId, "a");
});

test("unregister returns true, an unknown id false", () => {
  const r = new Registry();
  r.register(reg("a", [{ type: "chat" }]));
  assert.equal(r.unregister("a"), true);
  assert.equal(r.unregister("a"), false);
  assert.equal(r.unregister("nobody"), false);
});

test("exact 2-key lookup, subset lookup, unknown → no match", () => {
  const r = new Registry();
  r.register(reg("a", [{ type: "chat", model: "llama-70b" }]));
  r.register(reg("b", [{ type: "chat", model: "llama-7b" }]));
  assert.deepEqual(
    r.lookup({ type: "chat", model: "llama-7b" }).map((e) => e.replicaId),
    ["b"],
  );
  assert.deepEqual(
    r.lookup({ type: "chat" }).map((e) => e.replicaId),
    ["a", "b"],
  );
  assert.deepEqual(r.lookup({ type: "unknown" }), []);
  assert.deepEqual(r.lookup({ type: "chat", model: "gpt" }), []);
});

test("exclude skips to the next match; excluding all → no match", () => {
  const r = new Registry();
  r.register(reg("a", [{ type: "chat" }]));
  r.register(reg("b", [{ type: "chat" }]));
  assert.deepEqual(
    r.lookup({ type: "chat" }, ["a"]).map((e) => e.replicaId),
    ["b"],
  );
  assert.deepEqual(r.lookup({ type: "chat" }, new Set(["a", "b"])), []);
});

test("list all; random pick honours exclude; empty registry → none", () => {
  const r = new Registry();
  assert.equal(r.random(), undefined);
  r.register(reg("a", [{ type: "chat" }]));
  r.register(reg("b", [{ type: "embed" }]));
  assert.deepEqual(
    r.list().map((e) => e.replicaId),
    ["a", "b"],
  );
  for (let i = 0; i < 20; i++) assert.equal(r.random(new Set(["a"]))!.replicaId, "b");
  assert.equal(r.random(new Set(["a", "b"])), undefined);
});

test("values compare as strings: {gpus: 2} matches '2'", () => {
  const r = new Registry();
  r.register(reg("a", [{ type: "chat", gpus: "2" }]));
  assert.equal(r.lookup({ gpus: "2" }).length, 1);
});

test("20 concurrent registrations → 20 replicas", async () => {
  const r = new Registry();
  await Promise.all(Array.from({ length: 20 }, (_, i) => Promise.resolve().then(() => r.register(reg(`r${i}`, [{ type: "chat" }])))));
  assert.equal(r.size, 20);
  assert.equal(r.lookup({ type: "chat" }).length, 20);
});

test("precision with 3-key capabilities", () => {
  const r = new Registry();
  r.register(reg("a", [{ type: "chat", model: "llama-70b", quant: "fp16" }]));
  r.register(reg("b", [{ type: "chat", model: "llama-70b", quant: "int4" }]));
  r.register(reg("c", [{ type: "chat", model: "llama-7b", quant: "fp16" }]));
  assert.deepEqual(
    r.lookup({ type: "chat", model: "llama-70b", quant: "int4" }).map((e) => e.replicaId),
    ["b"],
  );
  assert.deepEqual(
    r.lookup({ type: "chat", model: "llama-7b" }).map((e) => e.replicaId),
    ["c"],
  );
  assert.equal(r.lookup({ type: "chat" }).length, 3);
});

test("a lookup reads only the rarest key=value posting list, not every replica", () => {
  const r = new Registry();
  for (let i = 0; i < 1000; i++) r.register(reg(`chat-${i}`, [{ type: "chat", model: `m${i}` }]));
  r.register(reg("embed", [{ type: "embed" }]));
  // The capability objects are checked only for candidates from the smallest list; spy on them.
  let checked = 0;
  for (const e of r.list()) {
    const caps = e.capabilities;
    e.capabilities = new Proxy(caps, {
      get: (t, p, rcv) => {
        if (p === "some") checked++;
        return Reflect.get(t, p, rcv);
      },
    });
  }
  assert.deepEqual(
    r.lookup({ type: "chat", model: "m7" }).map((e) => e.replicaId),
    ["chat-7"],
  );
  assert.ok(checked <= 1, `checked ${checked} replicas`);
});

test("heartbeats keep a replica; 3 silent intervals drop it, never sooner than the floor", () => {
  let now = 0;
  const r = new Registry({ now: () => now });
  r.register(reg("a", [{ type: "chat" }], 2000));
  now = 2500;
  r.heartbeat("a");
  now = 8500;
  assert.deepEqual(r.expire(), []);
  now = 8501;
  assert.deepEqual(r.expire(), ["a"]);
  assert.throws(() => r.heartbeat("a"), { code: "REPLICA_NOT_FOUND" });
  // 3 × 100 ms is shorter than the floor: the floor decides.
  r.register(reg("b", [{ type: "chat" }], 100));
  now += EXPIRY_FLOOR_MS;
  assert.deepEqual(r.expire(), []);
  now += 1;
  assert.deepEqual(r.expire(), ["b"]);
});

test("a foreign OIP server: out of rotation until its first probe passes, never expired for silence, kept healthy across re-registration", () => {
  let now = 0;
  const r = new Registry({ now: () => now });
  const foreign: ReplicaRegistration = { ...reg("t", [{ model: "resnet" }], 100), protocol: "oip-grpc" };
  delete foreign.httpEndpoint;
  const e = r.register(foreign);
  assert.equal(e.healthy, false);
  assert.match(e.probeError ?? "", /not probed yet/);
  assert.deepEqual(r.lookupAvailable({ model: "resnet" }), []);
  r.setHealthy("t", true);
  now += 60 * EXPIRY_FLOOR_MS;
  assert.deepEqual(r.expire(), [], "no heartbeats expected from a server that is not anyserve");
  assert.equal(r.register({ ...foreign, capabilities: [{ capability: { model: "resnet" }, state: "warm" }] }).healthy, true);
  // Another address is another server: probed again before it takes traffic.
  assert.equal(r.register({ ...foreign, endpoint: "10.0.0.9:8001" }).healthy, false);
});

test("draining: what a replica reports decides; an operator's drain of one that reports nothing holds across re-registration", () => {
  const r = new Registry();
  // Reported at registration and in heartbeats (anyserve replicas carry it: management.md).
  r.register({ ...reg("a", [{ type: "chat" }]), draining: true });
  assert.equal(r.get("a")!.available, false);
  assert.deepEqual(r.lookupAvailable({ type: "chat" }), []);
  r.heartbeat("a", { draining: false });
  assert.equal(r.get("a")!.available, true);
  r.heartbeat("a", {});
  assert.equal(r.get("a")!.available, true, "a heartbeat that says nothing changes nothing");
  r.heartbeat("a", { draining: true });
  assert.equal(r.get("a")!.available, false);
  // An operator's drain here of a replica that reports nothing (the seed's bodies) stays …
  r.register(reg("b", [{ type: "chat" }]));
  r.drain("b", true);
  r.register(reg("b", [{ type: "chat" }]));
  assert.equal(r.get("b")!.available, false);
  // … until the replica itself says otherwise.
  r.register({ ...reg("b", [{ type: "chat" }]), draining: false });
  assert.equal(r.get("b")!.available, true);
  r.register(reg("b", [{ type: "chat" }]));
  assert.equal(r.get("b")!.available, true, "the replica's word replaced the operator's drain here");
});

test("draining: a drain state older than the one held (a heartbeat sent before the change, arriving after it) changes nothing", () => {
  const r = new Registry();
  r.register({ ...reg("a", [{ type: "chat" }]), draining: false, drainSeq: 100 });
  // The operator drains it here; the replica answered that it changed at 200.
  r.drain("a", true, 200);
  assert.equal(r.get("a")!.available, false);
  // A heartbeat and a registration the replica sent before the change arrive now.
  r.heartbeat("a", { draining: false, drainSeq: 100 });
  assert.equal(r.get("a")!.available, false, "the stale heartbeat did not undo the drain");
  r.register({ ...reg("a", [{ type: "chat" }]), draining: false, drainSeq: 100 });
  assert.equal(r.get("a")!.available, false, "nor did the stale registration");
  assert.deepEqual(r.lookupAvailable({ type: "chat" }), []);
  // The replica's fresh registration, and its heartbeats after it, agree.
  r.register({ ...reg("a", [{ type: "chat" }]), draining: true, drainSeq: 200 });
  r.heartbeat("a", { draining: true, drainSeq: 200 });
  assert.equal(r.get("a")!.available, false);
  // An undrain made later (300) wins; an operator's drain older than what the replica reported does not.
  r.heartbeat("a", { draining: false, drainSeq: 300 });
  assert.equal(r.get("a")!.available, true);
  r.drain("a", true, 250);
  assert.equal(r.get("a")!.available, true, "the older drain was passed over");
  // A replica that reports no drain_seq (an older anyserve, the seed's shape) is taken at its word.
  r.register({ ...reg("b", [{ type: "chat" }]), draining: true });
  r.heartbeat("b", { draining: false });
  assert.equal(r.get("b")!.available, true);
});
