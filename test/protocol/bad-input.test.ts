/** Bad input the codecs refuse on their own (JSON, protobuf, binary extension): each case, its code and message. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeRequest } from "../../src/protocol/codec.js";
import { formatOfContentType } from "../../src/protocol/media-type.js";
import { parseHeaderLength } from "../../src/protocol/binary-ext.js";
import { decodeJsonRequest, encodeJsonResponse } from "../../src/protocol/json-codec.js";
import { decodeProtoRequest, encodeProtoRequest, protoTypes } from "../../src/protocol/proto-codec.js";
import { expectError, json } from "./helpers.js";

const ok = { name: "x", datatype: "FP32", shape: [2], data: [1, 2] };
const req = (extra: Record<string, unknown>): Buffer => json({ inputs: [ok], ...extra });
const input = (t: Record<string, unknown>): Buffer => json({ inputs: [{ ...ok, ...t }] });

test("truncated or empty JSON → INVALID_JSON 400", () => {
  const e = expectError(() => decodeRequest(Buffer.from("{"), { contentType: "application/json" }), "INVALID_JSON", "not valid JSON");
  assert.equal(e.httpStatus, 400);
  expectError(() => decodeRequest(Buffer.alloc(0), { contentType: "application/json" }), "INVALID_JSON", "empty");
  expectError(() => decodeRequest(Buffer.from("[1,2]"), {}), "INVALID_JSON", "must be a JSON object");
  expectError(() => decodeRequest(Buffer.from("null"), {}), "INVALID_JSON");
  expectError(() => decodeRequest(Buffer.from([0xff, 0xfe, 0x7b]), {}), "INVALID_JSON");
});

test("unsupported content type → 415; missing means JSON", () => {
  const e = expectError(() => formatOfContentType("text/plain"), "UNSUPPORTED_MEDIA_TYPE", "text/plain");
  assert.equal(e.httpStatus, 415);
  expectError(() => decodeRequest(req({}), { contentType: "application/xml" }), "UNSUPPORTED_MEDIA_TYPE");
  assert.equal(formatOfContentType(undefined), "json");
  assert.equal(formatOfContentType("Application/JSON; charset=utf-8"), "json");
  assert.equal(formatOfContentType("application/octet-stream"), "json");
  for (const ct of ["application/x-protobuf", "application/protobuf", "application/grpc+proto"])
    assert.equal(formatOfContentType(ct), "protobuf");
});

test("prototype keys anywhere walked → INVALID_JSON, Object.prototype unchanged", () => {
  const bodies = [
    '{"__proto__":{"polluted":1},"inputs":[]}',
    '{"constructor":{"prototype":{"polluted":1}},"inputs":[]}',
    '{"prototype":{},"inputs":[]}',
    '{"parameters":{"__proto__":{"polluted":1}},"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}',
    '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"__proto__":{"polluted":1}}]}',
    '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"parameters":{"constructor":1}}]}',
    '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],"outputs":[{"name":"y","__proto__":{"polluted":1}}]}',
  ];
  for (const b of bodies) {
    const e = expectError(() => decodeRequest(Buffer.from(b), {}), "INVALID_JSON", "is not allowed");
    assert.equal(e.httpStatus, 400);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.hasOwn(Object.prototype, "polluted"), false);
});

test("100k nested '[' → 400, no stack overflow", () => {
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  expectError(() => decodeRequest(Buffer.from(deep), {}), "INVALID_JSON");
  expectError(() => decodeRequest(Buffer.from("[".repeat(100_000)), {}), "INVALID_JSON");
  const body = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":${deep}}]}`;
  expectError(() => decodeRequest(Buffer.from(body), {}), "INVALID_TENSOR", "input 'x'", "nested deeper than the rank 1");
  const params = `{"parameters":{"p":${deep}},"inputs":[]}`;
  expectError(() => decodeRequest(Buffer.from(params), {}), "INVALID_PARAMETER", "'p'");
});

test("inputs missing, not an array, or empty → INVALID_REQUEST naming inputs", () => {
  for (const body of [{}, { inputs: {} }, { inputs: "x" }, { inputs: [] }, { inputs: null }]) {
    expectError(() => decodeJsonRequest(json(body)), "INVALID_REQUEST", "'inputs'");
  }
  expectError(() => decodeProtoRequest(encodeProtoRequest({ inputs: [] })), "INVALID_REQUEST", "'inputs'");
});

test("duplicate input names and unknown datatypes → INVALID_TENSOR", () => {
  expectError(() => decodeJsonRequest(json({ inputs: [ok, ok] })), "INVALID_TENSOR", "input 'x'", "more than once");
  expectError(() => decodeJsonRequest(input({ datatype: "FP128" })), "INVALID_TENSOR", "input 'x'", "FP128", "FP32");
  expectError(() => decodeJsonRequest(input({ datatype: "fp32" })), "INVALID_TENSOR", "fp32");
  expectError(() => decodeJsonRequest(input({ name: "" })), "INVALID_TENSOR", "input #0", "name");
  expectError(() => decodeJsonRequest(json({ inputs: [ok, 5] })), "INVALID_TENSOR", "input #1");
  const dup = protoTypes()
    .request.encode({
      inputs: [
        { name: "a", datatype: "BOOL", shape: [0] },
        { name: "a", datatype: "BOOL", shape: [0] },
      ],
    })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(dup)), "INVALID_TENSOR", "input 'a'", "more than once");
  const bad = protoTypes()
    .request.encode({ inputs: [{ name: "a", datatype: "FP128", shape: [0] }] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(bad)), "INVALID_TENSOR", "input 'a'", "FP128");
});

test("bad shape dims → INVALID_TENSOR naming the dim", () => {
  for (const shape of [[-1], [1.5], ["2"], [2 ** 53], [1e20], [null], "2", [2, -3]]) {
    expectError(() => decodeJsonRequest(input({ shape, data: [] })), "INVALID_TENSOR", "input 'x'", "shape");
  }
  const neg = protoTypes()
    .request.encode({ inputs: [{ name: "a", datatype: "FP32", shape: [-1] }] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(neg)), "INVALID_TENSOR", "input 'a'", "shape[0]", "-1");
  const huge = protoTypes()
    .request.encode({ inputs: [{ name: "a", datatype: "FP32", shape: ["9223372036854775807"] }] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(huge)), "INVALID_TENSOR", "shape[0]", "9223372036854775807");
});

test("element count ≠ product of shape → 'expected N elements, got M'", () => {
  const e = expectError(() => decodeJsonRequest(input({ shape: [2, 3], data: [1, 2, 3, 4, 5] })), "INVALID_TENSOR");
  assert.equal(e.message, "input 'x': expected 6 FP32 elements for shape [2,3], got 5");
  expectError(
    () =>
      decodeJsonRequest(
        input({
          shape: [2, 2],
          data: [
            [1, 2],
            [3, 4],
            [5, 6],
          ],
        }),
      ),
    "INVALID_TENSOR",
    "expected 4 FP32 elements",
    "got 6",
  );
  const typed = protoTypes()
    .request.encode({ inputs: [{ name: "a", datatype: "INT32", shape: [3], contents: { int_contents: [1, 2] } }] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(typed)), "INVALID_TENSOR", "input 'a': expected 3 INT32 elements for shape [3], got 2");
});

test("huge shape with tiny data → 400 before any allocation", () => {
  const before = process.memoryUsage().arrayBuffers;
  expectError(
    () => decodeJsonRequest(input({ shape: [1e9, 1e9], data: [1, 2, 3] })),
    "INVALID_TENSOR",
    "expected 1000000000000000000 FP32 elements",
    "got 3",
  );
  expectError(() => decodeJsonRequest(input({ datatype: "BYTES", shape: [1e9, 1e9], data: ["a"] })), "INVALID_TENSOR", "got 1");
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1e9, 1e9], parameters: { binary_data_size: 4 } }] }),
  );
  expectError(
    () => decodeJsonRequest(Buffer.concat([header, Buffer.alloc(4)]), header.length),
    "INVALID_TENSOR",
    "bytes of FP32 data",
    "got 4",
  );
  const bytesHeader = Buffer.from(
    JSON.stringify({ inputs: [{ name: "x", datatype: "BYTES", shape: [1e9, 1e9], parameters: { binary_data_size: 4 } }] }),
  );
  expectError(() => decodeJsonRequest(Buffer.concat([bytesHeader, Buffer.alloc(4)]), bytesHeader.length), "INVALID_TENSOR", "got 1");
  const proto = protoTypes()
    .request.encode({ inputs: [{ name: "a", datatype: "FP64", shape: [1e9, 1e9] }], raw_input_contents: [Buffer.alloc(8)] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(proto)), "INVALID_TENSOR", "input 'a'");
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
});

test("non-numbers, ragged nesting, out-of-range integers → INVALID_TENSOR", () => {
  expectError(() => decodeJsonRequest(input({ data: [1, "abc"] })), "INVALID_TENSOR", "input 'x'", "element 1", "FP32 number", '"abc"');
  expectError(() => decodeJsonRequest(input({ data: [1, "NaN"] })), "INVALID_TENSOR", '"NaN"');
  expectError(() => decodeJsonRequest(input({ data: [1, { v: 1 }] })), "INVALID_TENSOR", "element 1");
  expectError(() => decodeJsonRequest(input({ data: [1, null] })), "INVALID_TENSOR", "element 1", "null");
  expectError(() => decodeJsonRequest(input({ data: [true, 1] })), "INVALID_TENSOR", "element 0");
  expectError(() => decodeJsonRequest(input({ shape: [2, 2], data: [[1, 2], [3]] })), "INVALID_TENSOR", "ragged");
  expectError(() => decodeJsonRequest(input({ shape: [2, 2], data: [[1, 2], 3, 4] })), "INVALID_TENSOR", "ragged");
  expectError(() => decodeJsonRequest(input({ datatype: "INT8", data: [200, 1] })), "INVALID_TENSOR", "INT8 integer in [-128, 127]", "200");
  expectError(() => decodeJsonRequest(input({ datatype: "UINT8", data: [-1, 1] })), "INVALID_TENSOR", "UINT8", "-1");
  expectError(() => decodeJsonRequest(input({ datatype: "INT32", data: [1.5, 1] })), "INVALID_TENSOR", "INT32", "1.5");
  expectError(() => decodeJsonRequest(input({ datatype: "INT64", data: [2 ** 53, 1] })), "INVALID_TENSOR", "INT64", "safe integer");
  expectError(() => decodeJsonRequest(input({ datatype: "UINT64", data: [-1, 1] })), "INVALID_TENSOR", "UINT64");
  expectError(() => decodeJsonRequest(input({ datatype: "BOOL", data: [2, true] })), "INVALID_TENSOR", "BOOL", "element 0");
  expectError(() => decodeJsonRequest(input({ datatype: "BYTES", data: [1, "a"] })), "INVALID_TENSOR", "string");
  expectError(() => decodeJsonRequest(input({ data: undefined })), "INVALID_TENSOR", "no 'data'");
  const typed = protoTypes()
    .request.encode({ inputs: [{ name: "a", datatype: "INT8", shape: [1], contents: { int_contents: [300] } }] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(typed)), "INVALID_TENSOR", "input 'a'", "300");
  const wrong = protoTypes()
    .request.encode({ inputs: [{ name: "a", datatype: "INT32", shape: [1], contents: { fp32_contents: [1] } }] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(wrong)), "INVALID_TENSOR", "int_contents", "fp32_contents");
  const half = protoTypes()
    .request.encode({ inputs: [{ name: "a", datatype: "FP16", shape: [1], contents: { fp32_contents: [1] } }] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(half)), "INVALID_TENSOR", "FP16", "raw");
});

test("bad parameters and ids", () => {
  expectError(() => decodeJsonRequest(req({ parameters: { deep: { a: 1 } } })), "INVALID_PARAMETER", "'deep'");
  expectError(() => decodeJsonRequest(req({ parameters: { n: null } })), "INVALID_PARAMETER", "'n'");
  expectError(() => decodeJsonRequest(req({ parameters: [1] })), "INVALID_PARAMETER", "parameters must be an object");
  expectError(() => decodeJsonRequest(input({ parameters: { q: [1] } })), "INVALID_PARAMETER", "input 'x'", "'q'");
  expectError(() => decodeJsonRequest(req({ id: 5 })), "INVALID_REQUEST", "'id'");
  expectError(() => decodeJsonRequest(req({ id: "x".repeat(1_000_000) })), "INVALID_REQUEST", "'id'", "256");
  expectError(() => decodeJsonRequest(req({ model_name: 3 })), "INVALID_REQUEST", "'model_name'");
  expectError(() => decodeJsonRequest(req({ outputs: "y" })), "INVALID_REQUEST", "'outputs'");
  expectError(() => decodeJsonRequest(req({ outputs: [{ name: "y" }, { name: "y" }] })), "INVALID_REQUEST", "'y'");
  const r = decodeJsonRequest(
    req({ id: "abc", model_name: "m", model_version: "1", parameters: { a: 1, b: "s", c: false }, outputs: [{ name: "y" }] }),
  );
  assert.deepEqual(
    [r.id, r.modelName, r.modelVersion, r.parameters, r.outputs],
    ["abc", "m", "1", { a: 1, b: "s", c: false }, [{ name: "y" }]],
  );
  const longId = encodeProtoRequest({ id: "x".repeat(300), inputs: [{ name: "a", datatype: "BOOL", shape: [0], data: Buffer.alloc(0) }] });
  expectError(() => decodeProtoRequest(longId), "INVALID_REQUEST", "'id'");
  const protoParam = protoTypes()
    .request.encode({ parameters: { big: { int64_param: "9223372036854775807" } }, inputs: [{ name: "a", datatype: "BOOL", shape: [0] }] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(protoParam)), "INVALID_PARAMETER", "'big'", "9223372036854775807");
});

test("binary extension header length and sizes", () => {
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [2], parameters: { binary_data_size: 8 } }] }),
  );
  const body = Buffer.concat([header, Buffer.alloc(8)]);
  assert.equal(decodeJsonRequest(body, header.length).inputs[0]!.shape[0], 2);
  const e = expectError(() => decodeJsonRequest(body, body.length + 1), "INVALID_HEADER", "Inference-Header-Content-Length");
  assert.equal(e.httpStatus, 400);
  expectError(() => decodeJsonRequest(body, -1), "INVALID_HEADER");
  expectError(() => decodeJsonRequest(body, NaN), "INVALID_HEADER");
  expectError(() => decodeJsonRequest(body, 1.5), "INVALID_HEADER");
  for (const v of ["abc", "-5", "1e3", "", "12abc", ["1", "2"]]) expectError(() => parseHeaderLength(v), "INVALID_HEADER");
  assert.equal(parseHeaderLength(" 42 "), 42);
  assert.equal(parseHeaderLength(undefined), undefined);
  // sizes must add up exactly
  expectError(
    () => decodeJsonRequest(Buffer.concat([header, Buffer.alloc(4)]), header.length),
    "INVALID_TENSOR",
    "input 'x'",
    "binary_data_size 8",
  );
  expectError(() => decodeJsonRequest(Buffer.concat([header, Buffer.alloc(12)]), header.length), "INVALID_TENSOR", "add up to 8");
  const wrongSize = Buffer.from(
    JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [2], parameters: { binary_data_size: 6 } }] }),
  );
  expectError(
    () => decodeJsonRequest(Buffer.concat([wrongSize, Buffer.alloc(6)]), wrongSize.length),
    "INVALID_TENSOR",
    "expected 8 bytes of FP32 data for shape [2], got 6",
  );
  const noBinary = Buffer.from(
    JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [2], parameters: { binary_data_size: 8 } }] }),
  );
  expectError(() => decodeJsonRequest(noBinary), "INVALID_TENSOR", "no binary part");
  const both = Buffer.from(
    JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [2], data: [1, 2], parameters: { binary_data_size: 8 } }] }),
  );
  expectError(() => decodeJsonRequest(Buffer.concat([both, Buffer.alloc(8)]), both.length), "INVALID_TENSOR", "both");
  const negSize = Buffer.from(
    JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [2], parameters: { binary_data_size: -8 } }] }),
  );
  expectError(() => decodeJsonRequest(negSize, negSize.length), "INVALID_TENSOR", "binary_data_size");
  const boolHeader = Buffer.from(
    JSON.stringify({ inputs: [{ name: "b", datatype: "BOOL", shape: [2], parameters: { binary_data_size: 2 } }] }),
  );
  expectError(
    () => decodeJsonRequest(Buffer.concat([boolHeader, Buffer.from([1, 7])]), boolHeader.length),
    "INVALID_TENSOR",
    "BOOL element 1",
    "7",
  );
});

test("malformed BYTES length prefixes in binary data", () => {
  const make = (raw: Buffer, count: number): [Buffer, number] => {
    const h = Buffer.from(
      JSON.stringify({ inputs: [{ name: "s", datatype: "BYTES", shape: [count], parameters: { binary_data_size: raw.length } }] }),
    );
    return [Buffer.concat([h, raw]), h.length];
  };
  const el = (s: string): Buffer => {
    const b = Buffer.from(s);
    const p = Buffer.alloc(4);
    p.writeUInt32LE(b.length);
    return Buffer.concat([p, b]);
  };
  assert.equal(decodeJsonRequest(...make(Buffer.concat([el("ab"), el("")]), 2)).inputs[0]!.data.length, 2);
  expectError(() => decodeJsonRequest(...make(Buffer.from([5, 0, 0, 0, 1]), 1)), "INVALID_TENSOR", "input 's'", "declares 5 bytes");
  expectError(() => decodeJsonRequest(...make(Buffer.from([1, 0]), 1)), "INVALID_TENSOR", "truncated");
  expectError(
    () => decodeJsonRequest(...make(Buffer.concat([el("a"), el("b")]), 1)),
    "INVALID_TENSOR",
    "expected 1 BYTES elements for shape [1], got 2",
  );
  expectError(() => decodeJsonRequest(...make(el("a"), 3)), "INVALID_TENSOR", "got 1");
});

test("protobuf garbage, raw_input_contents count and size", () => {
  const garbage = [
    Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from("hello world, not protobuf"),
    Buffer.from([0x2a, 0x10, 0x0a]),
    Buffer.from([0x0a, 0x05, 0x61]),
    Buffer.from([0x0f]),
  ];
  for (const g of garbage) {
    const e = expectError(() => decodeRequest(g, { contentType: "application/x-protobuf" }), "INVALID_PROTOBUF");
    assert.equal(e.grpcStatus, 3);
  }
  let seed = 7;
  for (let i = 0; i < 2000; i++) {
    // fuzz: never anything but an AnyServeError
    const b = Buffer.alloc(1 + (i % 64));
    for (let k = 0; k < b.length; k++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      b[k] = seed >>> 24;
    }
    try {
      decodeProtoRequest(b);
    } catch (err) {
      assert.equal((err as Error).name, "AnyServeError", (err as Error).message);
    }
  }
  const two = [
    { name: "a", datatype: "FP32", shape: [1] },
    { name: "b", datatype: "FP32", shape: [1] },
  ];
  const short = protoTypes()
    .request.encode({ inputs: two, raw_input_contents: [Buffer.alloc(4)] })
    .finish();
  const e = expectError(() => decodeProtoRequest(Buffer.from(short)), "INVALID_TENSOR", "raw_input_contents has 1 entries for 2 inputs");
  assert.equal(e.grpcStatus, 3);
  const size = protoTypes()
    .request.encode({ inputs: two, raw_input_contents: [Buffer.alloc(4), Buffer.alloc(3)] })
    .finish();
  expectError(
    () => decodeProtoRequest(Buffer.from(size)),
    "INVALID_TENSOR",
    "input 'b'",
    "expected 4 bytes of FP32 data for shape [1], got 3",
  );
  const both = protoTypes()
    .request.encode({ inputs: [{ ...two[0], contents: { fp32_contents: [1] } }], raw_input_contents: [Buffer.alloc(4)] })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(both)), "INVALID_TENSOR", "input 'a'", "both contents and raw_input_contents");
  const protoKey = protoTypes()
    .request.encode({
      parameters: Object.defineProperty({}, "__proto__", { value: { bool_param: true }, enumerable: true }),
      inputs: [{ name: "a", datatype: "BOOL", shape: [0] }],
    })
    .finish();
  expectError(() => decodeProtoRequest(Buffer.from(protoKey)), "INVALID_PARAMETER", "__proto__");
});

test("encoding refuses what JSON cannot carry, naming the tensor", () => {
  const big = Buffer.alloc(8);
  big.writeBigInt64LE(2n ** 60n);
  expectError(
    () => encodeJsonResponse({ modelName: "m", outputs: [{ name: "y", datatype: "INT64", shape: [1], data: big }] }),
    "INVALID_TENSOR",
    "output 'y'",
    "1152921504606846976",
  );
  expectError(
    () => encodeJsonResponse({ modelName: "m", outputs: [{ name: "y", datatype: "BYTES", shape: [1], data: [Buffer.from([0xff])] }] }),
    "INVALID_TENSOR",
    "output 'y'",
    "UTF-8",
  );
  expectError(
    () => encodeJsonResponse({ modelName: "m", outputs: [{ name: "y", datatype: "FP32", shape: [2], data: Buffer.alloc(4) }] }),
    "INVALID_TENSOR",
    "output 'y'",
    "expected 8 bytes",
  );
  // ...but binary outputs carry both.
  const ok = encodeJsonResponse({ modelName: "m", outputs: [{ name: "y", datatype: "INT64", shape: [1], data: big }] }, { all: true });
  assert.ok(ok.headerLength! > 0);
});
