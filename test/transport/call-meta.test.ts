/** The REQUEST and RESPONSE metas of the frame hop: what one end writes, the other reads back. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { answerMeta, answerOf, frameMetaJson, fromFrameMeta } from "../../src/transport/call-meta.js";
import { encodeFrame, FrameDecoder, FrameType, type FrameMeta } from "../../src/transport/frames.js";
import type { IncomingCall } from "../../src/frontend/backend.js";
import { Cancellation } from "../../src/util/cancel.js";

function call(extra: Partial<IncomingCall> = {}): IncomingCall {
  return { query: { type: "chat", model: "m\"1\u00e9\u2603" }, body: Buffer.alloc(0), format: "json", timeoutMs: 1500, requestId: "r-1", signal: new Cancellation(), ...extra };
}

/** Encodes the meta into a frame and decodes it, as the replica receives it. */
function received(json: string): FrameMeta {
  let meta: FrameMeta | null = null;
  new FrameDecoder((_t, _id, m) => { meta = m; }).push(Buffer.concat(encodeFrame(FrameType.REQUEST, 7, json)));
  assert.ok(meta);
  return meta;
}

test("the hand-written request meta is the JSON of every field the call has", () => {
  const full = call({ contentType: "application/json; charset=utf-8", headerLength: 12, depth: 2, tried: ["a", "b\"c"], model: { name: "llama", version: "3" } });
  assert.deepEqual(JSON.parse(frameMetaJson(full, "stream")), {
    k: "stream", q: full.query, f: "json", to: 1500, rid: "r-1",
    ct: "application/json; charset=utf-8", hl: 12, d: 2, tr: ["a", "b\"c"], m: { name: "llama", version: "3" },
  });
  assert.deepEqual(JSON.parse(frameMetaJson(call(), "infer")), { k: "infer", q: call().query, f: "json", to: 1500, rid: "r-1" });
});

test("the replica reads back the call the gateway sent, non-ASCII values included", () => {
  const sent = call({ format: "protobuf", contentType: "application/x-protobuf", tried: ["r9"], depth: 1, model: { name: "m", version: undefined } });
  const got = fromFrameMeta(received(frameMetaJson(sent, "infer")), Buffer.alloc(0), new Cancellation());
  assert.equal(got.kind, "infer");
  assert.deepEqual(got.query, sent.query);
  assert.equal(got.format, "protobuf");
  assert.equal(got.timeoutMs, 1500);
  assert.equal(got.requestId, "r-1");
  assert.equal(got.contentType, "application/x-protobuf");
  assert.deepEqual(got.tried, ["r9"]);
  assert.equal(got.depth, 1);
  assert.deepEqual(got.model, { name: "m", version: undefined });
});

test("a cached query JSON is used as given; a number that is not finite is written as null", () => {
  const json = frameMetaJson(call({ timeoutMs: Number.NaN }), "infer", '{"type":"cached"}');
  const meta = JSON.parse(json) as Record<string, unknown>;
  assert.deepEqual(meta.q, { type: "cached" });
  assert.equal(meta.to, null);
  // The replica then falls back to its default timeout rather than reading NaN.
  assert.equal(fromFrameMeta(meta, Buffer.alloc(0), new Cancellation()).timeoutMs, 30_000);
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
