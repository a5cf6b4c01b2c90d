// The seed's `GET /route` answers with the replica a forwarded call would use: the same
// availability (draining, unhealthy, ejected, circuit open) and strategy as the forwarder.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AnyServeError } from "../../src/errors.js";
import { Forwarder } from "../../src/gateway/forwarder.js";
import { ServicePolicies } from "../../src/gateway/policies.js";
import { Registry } from "../../src/routing/registry.js";

function setup(): { registry: Registry; forwarder: Forwarder } {
  const registry = new Registry();
  for (const id of ["a", "b", "c"]) {
    registry.register({
      replicaId: id,
      endpoint: `localhost:${id}`,
      httpEndpoint: "http://127.0.0.1:1",
      capabilities: [{ capability: { type: "chat" }, state: "warm" }],
      heartbeatIntervalMs: 60_000,
    });
  }
  const forwarder = new Forwarder({
    registry,
    policies: new ServicePolicies(),
    unmatched: "error",
    maxDelegationDepth: 1,
    resilience: { outlier: { consecutiveFailures: 1 } },
  });
  return { registry, forwarder };
}

const picks = (f: Forwarder, n = 200): Set<string> => new Set(Array.from({ length: n }, () => f.lookup({ type: "chat" }).replicaId));
const code = (fn: () => unknown): string => {
  try {
    fn();
    return "no error";
  } catch (err) {
    return err instanceof AnyServeError ? err.code : String(err);
  }
};

test("lookup never names a draining or ejected replica, like the forwarder", () => {
  const { registry, forwarder } = setup();
  assert.deepEqual(picks(forwarder), new Set(["a", "b", "c"]));
  registry.drain("a", true);
  assert.ok(forwarder.outliers.onFailure("b", ["a", "b", "c"]), "b is ejected after one failure (consecutiveFailures: 1)");
  assert.deepEqual(picks(forwarder), new Set(["c"]));
});

test("lookup: nothing matches → NO_MATCHING_CAPABILITY; matches but none ready → NO_READY_REPLICA", async () => {
  const { registry, forwarder } = setup();
  assert.equal(
    code(() => forwarder.lookup({ type: "embed" })),
    "NO_MATCHING_CAPABILITY",
  );
  for (const id of ["a", "b", "c"]) registry.drain(id, true);
  assert.equal(
    code(() => forwarder.lookup({ type: "chat" })),
    "NO_READY_REPLICA",
  );
  await forwarder.close();
});

test("a replica's new process starts with a clean record: failures of the old one recorded after it left do not eject it", async () => {
  const { registry, forwarder } = setup();
  const b = registry.get("b")!;
  // The same process registering again (a capability turned warm) keeps its record.
  assert.ok(forwarder.outliers.onFailure("b", ["a", "b", "c"]));
  registry.register({ ...b, capabilities: [{ capability: { type: "chat" }, state: "warm" }] });
  assert.deepEqual(picks(forwarder), new Set(["a", "c"]), "still ejected");
  // b dies: it is unregistered, then a request that was in flight to it fails.
  registry.unregister("b");
  assert.ok(forwarder.outliers.onFailure("b", ["a", "c"]), "the late failure ejects the id");
  // Its replacement registers (another endpoint): in rotation at once.
  registry.register({ ...b, endpoint: "localhost:b2", httpEndpoint: "http://127.0.0.1:2" });
  assert.deepEqual(picks(forwarder), new Set(["a", "b", "c"]));
  await forwarder.close();
});
