// What a replica registers as its address (replica/advertise.ts) and the api_server list of its
// document. The default for a wildcard bind on a real other-host route is checked across network
// namespaces in test/multihost/hosts.test.ts; here, what needs no namespaces.
import assert from "node:assert/strict";
import { test } from "node:test";
import { apiServersOf, parseReplicaDoc } from "../../src/config/replica.js";
import { ConfigError } from "../../src/config/errors.js";
import { advertisedHost, isWildcardHost, sourceAddressTowards } from "../../src/replica/advertise.js";

test("a specific bind address is advertised as is; --advertise-host wins over everything", async () => {
  assert.equal(await advertisedHost({ host: "127.0.0.1", apiServer: "http://127.0.0.1:1" }), "127.0.0.1");
  assert.equal(await advertisedHost({ host: "0.0.0.0", advertiseHost: "node-a.internal" }), "node-a.internal");
  assert.equal(await advertisedHost({ host: "127.0.0.1", advertiseHost: "10.0.0.5" }), "10.0.0.5");
});

test("a wildcard bind advertises the source address of the route to the API server, never the wildcard", async () => {
  for (const h of ["0.0.0.0", "::", "[::]"]) assert.ok(isWildcardHost(h), h);
  assert.ok(!isWildcardHost("127.0.0.1"));
  // The route to a loopback API server leaves from loopback (names resolve first).
  assert.equal(await advertisedHost({ host: "0.0.0.0", apiServer: "http://127.0.0.1:8080" }), "127.0.0.1");
  assert.equal(await sourceAddressTowards("localhost", 8080).then((a) => a === "127.0.0.1" || a === "::1"), true);
  const alone = await advertisedHost({ host: "0.0.0.0" });
  assert.ok(!isWildcardHost(alone), alone);
});

test("api_server is one URL or a list of them, each checked", () => {
  const config = { app: "x.ts" };
  assert.deepEqual(apiServersOf(parseReplicaDoc({ api_server: "http://a:1", config })), ["http://a:1"]);
  assert.deepEqual(apiServersOf(parseReplicaDoc({ api_server: ["http://a:1", "http://b:2"], config })), ["http://a:1", "http://b:2"]);
  assert.deepEqual(apiServersOf(parseReplicaDoc({ config })), []);
  assert.throws(() => parseReplicaDoc({ api_server: ["http://a:1", "ftp://b"], config }), ConfigError);
  assert.throws(() => parseReplicaDoc({ api_server: [], config }), ConfigError);
  assert.throws(() => parseReplicaDoc({ advertise_host: "a b", config }), ConfigError);
});
