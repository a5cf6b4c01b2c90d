/** Unit tests of the frame codec: encoding, decoding across arbitrary chunk boundaries, limits. */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameProtocolError,
  FrameType,
  encodeFrame,
  errorMeta,
  metaError,
  type FrameMeta,
} from "../../src/transport/frames.js";
import { AnyServeError } from "../../src/errors.js";

interface Got {
  type: number;
  id: number;
  meta: FrameMeta | null;
  body: Buffer;
}

function collect(max?: number): { dec: FrameDecoder; got: Got[] } {
  const got: Got[] = [];
  const dec = new FrameDecoder((type, id, meta, body) => got.push({ type, id, meta, body: Buffer.from(body) }), max);
  return { dec, got };
}

const wire = (...frames: Buffer[][]): Buffer => Buffer.concat(frames.flat());

test("encodes the documented layout", () => {
  const [head, ...rest] = encodeFrame(FrameType.RESPONSE, 0xdeadbeef, { a: 1 }, Buffer.from("xyz"));
  assert.equal(rest.length, 0, "a small body is inlined");
  const b = head!;
  assert.equal(b.readUInt32LE(0), b.length - 4);
  assert.equal(b[4], 1);
  assert.equal(b[5], FrameType.RESPONSE);
  assert.equal(b.readUInt32LE(6), 0xdeadbeef);
  assert.equal(b.readUInt32LE(10), 7);
  assert.equal(b.toString("utf8", FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 7), '{"a":1}');
  assert.equal(b.toString("utf8", FRAME_HEADER_BYTES + 7), "xyz");
});

test("a big body stays a separate buffer (no copy)", () => {
  const body = Buffer.alloc(100_000, 7);
  const parts = encodeFrame(FrameType.REQUEST, 1, null, body);
  assert.equal(parts.length, 2);
  assert.equal(parts[1], body);
  assert.equal(parts[0]!.readUInt32LE(0), FRAME_HEADER_BYTES - 4 + body.length);
});

test("frames split at every byte boundary decode intact", () => {
  const frames = [
    encodeFrame(FrameType.REQUEST, 1, { hello: "wörld" }, Buffer.from("body-1")),
    encodeFrame(FrameType.CHUNK, 2, null, Buffer.alloc(0)),
    encodeFrame(FrameType.END, 3, { n: 3 }, Buffer.alloc(3000, 0xab)),
    encodeFrame(FrameType.PING, 0, null),
  ];
  const all = wire(...frames);
  for (let cut1 = 0; cut1 <= all.length; cut1++) {
    // Two cuts: one at every position, a second at a fixed distance after it.
    const cut2 = Math.min(all.length, cut1 + 5);
    const { dec, got } = collect();
    dec.push(all.subarray(0, cut1));
    dec.push(all.subarray(cut1, cut2));
    dec.push(all.subarray(cut2));
    assert.equal(got.length, 4, `cut at ${cut1}`);
    assert.deepEqual(got[0], { type: FrameType.REQUEST, id: 1, meta: { hello: "wörld" }, body: Buffer.from("body-1") });
    assert.deepEqual(got[1], { type: FrameType.CHUNK, id: 2, meta: null, body: Buffer.alloc(0) });
    assert.deepEqual(got[2], { type: FrameType.END, id: 3, meta: { n: 3 }, body: Buffer.alloc(3000, 0xab) });
    assert.deepEqual(got[3], { type: FrameType.PING, id: 0, meta: null, body: Buffer.alloc(0) });
    assert.equal(dec.buffered, 0);
  }
});

test("one byte at a time", () => {
  const all = wire(encodeFrame(FrameType.RESPONSE, 9, { x: [1, 2] }, Buffer.alloc(2000, 1)), encodeFrame(FrameType.GOAWAY, 0, null));
  const { dec, got } = collect();
  for (let i = 0; i < all.length; i++) {
    dec.push(all.subarray(i, i + 1));
    if (i === 20) assert.equal(dec.partialId, 9, "the id of a frame in progress is known");
  }
  assert.equal(got.length, 2);
  assert.equal(got[0]!.body.length, 2000);
  assert.equal(got[1]!.type, FrameType.GOAWAY);
});

test("many frames in one chunk are views into that chunk", () => {
  const all = wire(...Array.from({ length: 50 }, (_, i) => encodeFrame(FrameType.RESPONSE, i + 1, { i }, Buffer.alloc(2000, i))));
  const views: Buffer[] = [];
  const dec = new FrameDecoder((_t, _id, _m, body) => views.push(body));
  dec.push(all);
  assert.equal(views.length, 50);
  for (let i = 0; i < 50; i++) {
    assert.equal(views[i]!.buffer, all.buffer, "no copy");
    assert.ok(views[i]!.equals(Buffer.alloc(2000, i)));
  }
});

test("a wrong version is a protocol error, and the decoder then ignores input", () => {
  const bad = encodeFrame(FrameType.REQUEST, 1, null, Buffer.from("x"))[0]!;
  bad[4] = 2;
  const { dec, got } = collect();
  assert.throws(
    () => dec.push(bad),
    (e: unknown) => e instanceof FrameProtocolError && /version 2/.test(e.message),
  );
  dec.push(wire(encodeFrame(FrameType.REQUEST, 2, null)));
  assert.equal(got.length, 0);
});

test("a frame over the maximum size is rejected as soon as its length is read", () => {
  const { dec } = collect(1000);
  const head = encodeFrame(FrameType.REQUEST, 1, null, Buffer.alloc(2000))[0]!;
  assert.throws(
    () => dec.push(head.subarray(0, 4)),
    (e: unknown) =>
      e instanceof FrameProtocolError &&
      e.code === "PAYLOAD_TOO_LARGE" &&
      /2010 bytes exceeds the maximum frame size of 1000/.test(e.message),
  );
});

test("short lengths, overrunning meta and non-object meta are protocol errors", () => {
  const short = Buffer.alloc(8);
  short.writeUInt32LE(4, 0);
  assert.throws(() => collect().dec.push(short), FrameProtocolError);
  const overrun = encodeFrame(FrameType.REQUEST, 1, { a: 1 })[0]!;
  overrun.writeUInt32LE(100, 10);
  assert.throws(() => collect().dec.push(overrun), /overruns/);
  const arr = Buffer.from(encodeFrame(FrameType.REQUEST, 1, { a: 1 })[0]!);
  arr.write("[1,2,3]", FRAME_HEADER_BYTES);
  assert.throws(() => collect().dec.push(arr), /not a JSON object/);
  const junk = Buffer.from(encodeFrame(FrameType.REQUEST, 1, { a: 1 })[0]!);
  junk.write("{{{", FRAME_HEADER_BYTES);
  assert.throws(() => collect().dec.push(junk), /not valid JSON/);
});

test("error meta round-trips through metaError", () => {
  const m = errorMeta(new AnyServeError("INVALID_TENSOR", "input 'x' is wrong", { tensor: "x" }));
  assert.deepEqual(m, { code: "INVALID_TENSOR", error: "input 'x' is wrong", data: { tensor: "x" } });
  const e = metaError(m)!;
  assert.equal(e.code, "INVALID_TENSOR");
  assert.deepEqual(e.data, { tensor: "x" });
  assert.equal(metaError({ ok: true }), undefined);
  assert.equal(metaError(null), undefined);
  assert.equal(errorMeta(new Error("boom")).code, "WORKER_ERROR");
});
