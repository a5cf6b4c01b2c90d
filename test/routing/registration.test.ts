// The registration schema (routing/registration.ts): what the control routes and the direct
// client's route table accept, and errors that name the field, what it expects and what it got.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AnyServeError } from "../../src/errors.js";
import { parseHeartbeat, parseRegistration, parseUnregister } from "../../src/routing/registration.js";

const ok = { replica_id: "r-1", endpoint: "localhost:50051", capabilities: [{ type: "chat", gpus: 2 }] };

function refused(fn: () => unknown): AnyServeError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AnyServeError, String(err));
    return err;
  }
  assert.fail("expected an error");
}

test("a registration is normalised: capability values as strings, states default to warm, the URL to its origin", () => {
  const reg = parseRegistration(
    { ...ok, http_endpoint: "http://10.0.0.5:8000/ignored?x=1", service: "chat", node: 7, heartbeat_interval_ms: null, unknown: 1 },
    5_000,
  );
  assert.deepEqual(reg, {
    replicaId: "r-1",
    endpoint: "localhost:50051",
    capabilities: [{ capability: { type: "chat", gpus: "2" }, state: "warm" }],
    heartbeatIntervalMs: 5_000,
    httpEndpoint: "http://10.0.0.5:8000",
    service: "chat",
  });
  assert.equal(parseRegistration({ ...ok, states: ["cold"], heartbeat_interval_ms: 250 }, 5_000).capabilities[0]!.state, "cold");
  assert.equal(parseRegistration({ ...ok, heartbeat_interval_ms: 250 }, 5_000).heartbeatIntervalMs, 250);
});

test("each bad field is named with what it expects and what it got, all of them in one message", () => {
  const e = refused(() =>
    parseRegistration(
      { replica_id: "a b", endpoint: "nohost", capabilities: [{ a: "1" }], states: ["hot"], heartbeat_interval_ms: 2.5 },
      1,
    ),
  );
  assert.equal(e.code, "INVALID_REGISTRATION");
  assert.equal(e.httpStatus, 400);
  assert.match(e.message, /replica_id: expected 1-128 characters of \[A-Za-z0-9_.-\], got "a b"/);
  assert.match(e.message, /endpoint: expected host:port, got "nohost"/);
  assert.match(e.message, /states\[0\]: expected warm, cold or failed, got "hot"/);
  assert.match(e.message, /heartbeat_interval_ms: expected an integer from 10 to 3600000, got 2.5/);
  assert.match(
    refused(() => parseRegistration({ replica_id: "a", endpoint: "h:1" }, 1)).message,
    /^capabilities: expected a list .*, got nothing$/,
  );
  assert.match(
    refused(() => parseRegistration({ ...ok, capabilities: [{ type: { nested: 1 } }] }, 1)).message,
    /^capabilities\[0\]\.type: expected a string, number or boolean, got object$/,
  );
  assert.match(
    refused(() => parseRegistration({ ...ok, states: ["warm", "cold"] }, 1)).message,
    /^states: expected a list of 1 states .*, got 2$/,
  );
  assert.match(refused(() => parseRegistration([1], 1)).message, /^body: expected a JSON object, got an array$/);
  assert.match(refused(() => parseRegistration({ ...ok, capabilities: new Array(1025).fill({ a: "b" }) }, 1)).message, /at most 1024/);
});

test("an http_endpoint the gateway must not call is URL_NOT_ALLOWED", () => {
  for (const [url, why] of [
    ["file:///etc/passwd", /scheme 'file:'/],
    ["http://user:pw@h:1", /without credentials/],
    ["http://169.254.169.254", /link-local/],
    ["not a url", /expected an http\(s\):\/\/host:port URL, got "not a url"/],
    // Every spelling of the metadata address (issue 25 #4): the address inside is what is checked.
    ["http://[::ffff:169.254.169.254]:80", /169\.254\.169\.254 is link-local .*inside ::ffff:a9fe:a9fe/],
    ["http://[fd00:ec2::254]:80", /fd00:ec2::254 is a cloud metadata service/],
    ["http://[::ffff:a9fe:a9fe]", /link-local/],
    ["http://[::169.254.169.254]", /link-local/],
    ["http://[64:ff9b::169.254.169.254]", /link-local/],
    ["http://[2002:a9fe:a9fe::1]", /link-local/],
    ["http://[fe80::1%25eth0]:80", /expected an http\(s\)|link-local/],
    ["http://[FE80::abcd]:80", /fe80::abcd is link-local/],
    ["http://2852039166:80", /169\.254\.169\.254 is link-local/],
    ["http://0xa9fea9fe/", /169\.254\.169\.254 is link-local/],
    ["http://0251.0376.0251.0376/", /169\.254\.169\.254 is link-local/],
    ["http://169.254.169.254./", /link-local/],
    ["http://100.100.100.200", /cloud metadata service/],
    ["http://metadata.google.internal", /cloud metadata service/],
  ] as const) {
    const e = refused(() => parseRegistration({ ...ok, http_endpoint: url }, 1));
    assert.equal(e.code, "URL_NOT_ALLOWED", url);
    assert.match(e.message, /^http_endpoint: /);
    assert.match(e.message, why);
  }
  // The gRPC endpoint too, through the same parser: host:port in any spelling.
  for (const endpoint of ["169.254.169.254:80", "2852039166:80", "0xa9fea9fe:80", "[::ffff:169.254.169.254]:80", "[fd00:ec2::254]:80"]) {
    const e = refused(() => parseRegistration({ ...ok, endpoint }, 1));
    assert.equal(e.code, "URL_NOT_ALLOWED", endpoint);
    assert.match(e.message, /^endpoint: not allowed: /);
  }
  // Allowed addresses are kept, in the parser's spelling.
  assert.equal(
    parseRegistration({ ...ok, http_endpoint: "http://[::ffff:127.0.0.1]:8001/x" }, 1).httpEndpoint,
    "http://[::ffff:7f00:1]:8001",
  );
  assert.equal(parseRegistration({ ...ok, endpoint: "LocalHost:50051" }, 1).endpoint, "localhost:50051");
});

test("heartbeat and unregister bodies", () => {
  assert.deepEqual(parseHeartbeat({ replica_id: "r" }), { replicaId: "r" });
  assert.deepEqual(parseHeartbeat({ replica_id: "r", capabilities: [{ a: 1 }], states: ["failed"] }), {
    replicaId: "r",
    capabilities: [{ capability: { a: "1" }, state: "failed" }],
  });
  assert.deepEqual(parseUnregister({ replica_id: "r" }), { replicaId: "r" });
  const secret = "s".repeat(22);
  assert.deepEqual(parseUnregister({ replica_id: "r", replica_secret: secret }), { replicaId: "r", secret });
  assert.deepEqual(parseHeartbeat({ replica_id: "r", replica_secret: secret }), { replicaId: "r", secret });
  assert.match(refused(() => parseUnregister({ replica_id: "r", replica_secret: "short" })).message, /^replica_secret: expected 22-256/);
  assert.match(refused(() => parseUnregister({ replica_id: 5 })).message, /^replica_id: expected .*, got 5$/);
  assert.match(refused(() => parseHeartbeat({})).message, /^replica_id: .*got nothing$/);
  // The drain state and when it was decided (a stale one is passed over by the registry).
  assert.deepEqual(parseHeartbeat({ replica_id: "r", draining: true, drain_seq: 1_765_000_000_000 }), {
    replicaId: "r",
    draining: true,
    drainSeq: 1_765_000_000_000,
  });
  assert.match(refused(() => parseHeartbeat({ replica_id: "r", drain_seq: -1 })).message, /^drain_seq: .*got -1$/);
  assert.match(refused(() => parseHeartbeat({ replica_id: "r", drain_seq: "1" })).message, /^drain_seq: expected a number, got "1"$/);
});

test("protocol: the seed's body (no http_endpoint) is OIP gRPC; an http_endpoint is anyserve; oip-rest needs its URL and may leave out endpoint", () => {
  assert.equal(parseRegistration(ok, 1).protocol, "oip-grpc");
  assert.equal(parseRegistration({ ...ok, http_endpoint: "http://h:1" }, 1).protocol, undefined);
  assert.equal(parseRegistration({ ...ok, http_endpoint: "http://h:1", protocol: "anyserve" }, 1).protocol, undefined);
  const rest = parseRegistration(
    { replica_id: "t", protocol: "oip-rest", http_endpoint: "http://triton:8000/x", capabilities: [{ model: "m" }] },
    1,
  );
  assert.equal(rest.protocol, "oip-rest");
  assert.equal(rest.httpEndpoint, "http://triton:8000");
  assert.equal(rest.endpoint, "triton:8000");
  assert.match(
    refused(() => parseRegistration({ replica_id: "t", protocol: "oip-rest", endpoint: "h:1", capabilities: [{ model: "m" }] }, 1)).message,
    /^http_endpoint: expected the OIP REST server's http\(s\):\/\/host:port \(protocol oip-rest\), got nothing$/,
  );
  assert.match(
    refused(() => parseRegistration({ replica_id: "t", capabilities: [{ model: "m" }] }, 1)).message,
    /^endpoint: expected host:port, got nothing$/,
  );
  assert.match(
    refused(() => parseRegistration({ ...ok, protocol: "kserve" }, 1)).message,
    /^protocol: expected anyserve, oip-grpc or oip-rest, got "kserve"$/,
  );
});

test("a foreign replica's capabilities must name a model (or type); its gRPC endpoint may not be link-local", () => {
  const e = refused(() => parseRegistration({ ...ok, capabilities: [{ model: "m" }, { service: "kv", method: "get" }] }, 1));
  assert.equal(e.code, "INVALID_REGISTRATION");
  assert.match(e.message, /^capabilities\[1\]: expected a 'model' \(or 'type'\) key naming the model the oip-grpc server serves, got/);
  // An anyserve replica's capabilities are its own business.
  assert.doesNotThrow(() => parseRegistration({ ...ok, http_endpoint: "http://h:1", capabilities: [{ service: "kv" }] }, 1));
  for (const endpoint of ["169.254.169.254:80", "[fe80::1]:8001"]) {
    const bad = refused(() => parseRegistration({ ...ok, endpoint }, 1));
    assert.equal(bad.code, "URL_NOT_ALLOWED", endpoint);
    assert.match(bad.message, /^endpoint: not allowed: .* is link-local/);
  }
});
