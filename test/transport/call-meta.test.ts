/** The REQUEST and RESPONSE metas of the frame hop: what one end writes, the other reads back. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { answerMeta, answerOf, callMeta, fromFrameMeta, readCallMeta } from "../../src/transport/call-meta.js";
import { encodeFrame, FrameDecoder, FrameProtocolError, FrameType, type FrameMeta } from "../../src/transport/frames.js";
import { AnyServeError } from "../../src/errors.js";
import type { IncomingCall } from "../../src/protocol/call.js";
import { Cancellation } from "../../src/util/cancel.js";

function call(extra: Partial<IncomingCall> = {}): IncomingCall {
  return {
    query: { type: "chat", model: 'm"1\u00e9\u2603' },
    body: Buffer.alloc(0),
    format: "json",
    timeoutMs: 1500,
    requestId: "r-1",
    signal: new Cancellation(),
    ...extra,
  };
}

/** Sends the meta in a REQUEST frame and decodes it as the replica's frame server does. */
function received(meta: Buffer | string): FrameMeta {
  let got: FrameMeta | null = null;
  new FrameDecoder(
    (_t, _id, m) => {
      got = m;
    },
    undefined,
    { [FrameType.REQUEST]: readCallMeta },
  ).push(Buffer.concat(encodeFrame(FrameType.REQUEST, 7, meta)));
  assert.ok(got);
  return got;
}

/** What the replica makes of `meta`, as a call (no body, signal or kind). */
function callOf(meta: Buffer | string): Partial<IncomingCall> & { kind: string } {
  const { body: _b, signal: _s, ...rest } = fromFrameMeta(received(meta), Buffer.alloc(0), new Cancellation());
  return rest;
}

test("every field of a call survives the binary meta, non-ASCII values included", () => {
  const full = call({
    contentType: "application/json; charset=utf-8",
    headerLength: 12,
    depth: 2,
    tried: ["a", 'b"c', "\u00e9t\u00e9"],
    model: { name: "llama-\u2603", version: "3" },
    requestId: "r-\u00fc-1",
    format: "protobuf",
  });
  assert.deepEqual(callOf(callMeta(full, "stream")), {
    kind: "stream",
    query: full.query,
    format: "protobuf",
    timeoutMs: 1500,
    requestId: "r-\u00fc-1",
    contentType: "application/json; charset=utf-8",
    headerLength: 12,
    depth: 2,
    tried: ["a", 'b"c', "\u00e9t\u00e9"],
    model: { name: "llama-\u2603", version: "3" },
  });
  assert.deepEqual(callOf(callMeta(call(), "infer")), {
    kind: "infer",
    query: call().query,
    format: "json",
    timeoutMs: 1500,
    requestId: "r-1",
  });
  assert.deepEqual(callOf(callMeta(call({ model: { name: "m", version: undefined } }), "meta")).model, { name: "m", version: undefined });
  for (const kind of ["infer", "stream", "meta", "health"] as const) assert.equal(callOf(callMeta(call(), kind)).kind, kind);
});

test("the query bytes the gateway's route keeps are used as given, and repeats read back as equal maps", () => {
  const q = Buffer.from(JSON.stringify({ type: "cached" }));
  const first = callOf(callMeta(call(), "infer", q));
  const again = callOf(callMeta(call({ requestId: "r-2" }), "infer", q));
  assert.deepEqual(first.query, { type: "cached" });
  assert.deepEqual(again.query, { type: "cached" });
  assert.equal(again.requestId, "r-2");
  // Each call gets its own map: a handler that changes its request's query changes no other.
  assert.notEqual(first.query, again.query);
  // Another query between two alike ones is read as itself.
  assert.deepEqual(callOf(callMeta(call(), "infer", Buffer.from('{"type":"other"}'))).query, { type: "other" });
  assert.deepEqual(callOf(callMeta(call(), "infer", q)).query, { type: "cached" });
  // A long query (not cached) reads back the same, twice.
  const long = { type: "x".repeat(1000), model: "y".repeat(500) };
  for (let i = 0; i < 2; i++) assert.deepEqual(callOf(callMeta(call({ query: long }), "infer")).query, long);
});

test("a time that is not a finite number, or is negative, falls back to the replica's default", () => {
  for (const timeoutMs of [Number.NaN, Infinity, -5]) assert.equal(callOf(callMeta(call({ timeoutMs }), "infer")).timeoutMs, 30_000);
  const c = callOf(callMeta(call({ headerLength: Number.NaN, depth: Infinity }), "infer"));
  assert.equal(c.headerLength, undefined);
  assert.equal(c.depth, undefined);
});

test("a JSON request meta, as earlier versions and other clients write it, reads as the same call", () => {
  const json = JSON.stringify({
    k: "infer",
    q: { type: "chat" },
    f: "protobuf",
    to: 900,
    rid: "j-1",
    ct: "application/x-protobuf",
    tr: ["r9"],
    d: 1,
    m: { name: "m" },
  });
  assert.deepEqual(callOf(json), {
    kind: "infer",
    query: { type: "chat" },
    format: "protobuf",
    timeoutMs: 900,
    requestId: "j-1",
    contentType: "application/x-protobuf",
    tried: ["r9"],
    depth: 1,
    model: { name: "m", version: undefined },
  });
  assert.equal(callOf(JSON.stringify({ k: "infer", q: { type: "chat" }, to: null, rid: "j" })).timeoutMs, 30_000);
  assert.equal(callOf(` \n${JSON.stringify({ k: "stream", q: { type: "chat" }, rid: "ws" })}`).kind, "stream"); // JSON may start with whitespace
});

test("malformed request metas close the connection; a kind or query that makes no call fails that request only", () => {
  const good = callMeta(call({ contentType: "application/json" }), "infer");
  const protocolError = (bytes: Buffer | string, message: RegExp): void => {
    assert.throws(
      () => received(bytes),
      (e: unknown) => e instanceof FrameProtocolError && e.code === "UPSTREAM_PROTOCOL_ERROR" && message.test(e.message),
    );
  };
  for (let cut = 1; cut < good.length; cut++) protocolError(good.subarray(0, cut), /frame 7 has a binary call meta cut short/);
  protocolError(Buffer.concat([good, Buffer.from([0])]), /1 bytes after its binary call meta/);
  protocolError(Buffer.from([0x02, 0, 0, 0]), /not valid JSON/);
  protocolError("{not json", /not valid JSON/);
  const badQuery = callMeta(call(), "infer", Buffer.from("{oops"));
  protocolError(badQuery, /whose query is not valid JSON/);
  // A length field pointing past the end.
  const long = Buffer.from(good);
  long.writeUInt32LE(0xffffffff, 12);
  protocolError(long, /cut short/);

  const unknownKind = Buffer.from(good);
  unknownKind[1] = 9;
  assert.throws(
    () => callOf(unknownKind),
    (e: unknown) =>
      e instanceof AnyServeError && e.code === "UPSTREAM_PROTOCOL_ERROR" && /frame kind "kind 9" is not one of/.test(e.message),
  );
  const badKey = callMeta(call(), "infer", Buffer.from('{"no spaces allowed": "x"}'));
  assert.throws(
    () => callOf(badKey),
    (e: unknown) => e instanceof AnyServeError && e.code === "INVALID_CAPABILITY",
  );
});

test("a plain JSON answer has no meta at all, and reads back as JSON", () => {
  const body = Buffer.from("{}");
  assert.equal(answerMeta({ body, contentType: "application/json" }), null);
  assert.deepEqual(answerOf({ meta: {}, body }), { body, contentType: "application/json" });
  const binary = answerMeta({ body, contentType: "application/octet-stream", headerLength: 2 });
  assert.deepEqual(binary, { ct: "application/octet-stream", hl: 2 });
  assert.deepEqual(answerOf({ meta: binary!, body }), { body, contentType: "application/octet-stream", headerLength: 2 });
  assert.deepEqual(answerOf({ meta: answerMeta({ body, contentType: "text/plain" })!, body }), { body, contentType: "text/plain" });
});
