import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from "../../src/protocol/codec.js";
import {
  handlerResultToResponse,
  inputsToRequest,
  responseToValue,
  tensorToBuffers,
  tensorToValues,
  valueToTensor,
} from "../../src/protocol/values.js";
import type { InferRequest, Tensor } from "../../src/protocol/types.js";
import { SAMPLES, allTypesTensors, expectError } from "./helpers.js";

const byType = (): Map<string, Tensor> => new Map(allTypesTensors().map((t) => [t.datatype, t]));

test("tensorToValues: the matching typed array per numeric type, with the right values", () => {
  const t = byType();
  const expectCtor: Record<string, unknown> = {
    UINT8: Uint8Array,
    UINT16: Uint16Array,
    UINT32: Uint32Array,
    UINT64: BigUint64Array,
    INT8: Int8Array,
    INT16: Int16Array,
    INT32: Int32Array,
    INT64: BigInt64Array,
    FP32: Float32Array,
    FP64: Float64Array,
    FP16: Float32Array,
    BF16: Float32Array,
  };
  for (const [dt, ctor] of Object.entries(expectCtor)) {
    const v = tensorToValues(t.get(dt)!);
    assert.equal(v.constructor, ctor, dt);
    const expected = SAMPLES[dt as keyof typeof SAMPLES].map((x) => (dt.endsWith("64") && dt.includes("INT") ? BigInt(x as number) : x));
    assert.deepEqual(Array.from(v as ArrayLike<unknown>), expected, dt);
  }
  assert.deepEqual(tensorToValues(t.get("BOOL")!), SAMPLES.BOOL);
  assert.deepEqual(tensorToValues(t.get("BYTES")!), SAMPLES.BYTES);
});

test("tensorToValues: a zero-copy view when aligned, a copy when not", () => {
  const backing = Buffer.alloc(17);
  const aligned = backing.subarray(8, 16);
  aligned.writeFloatLE(1.5, 0);
  aligned.writeFloatLE(-2, 4);
  const view = tensorToValues({ name: "a", datatype: "FP32", shape: [2], data: aligned }) as Float32Array;
  assert.deepEqual(Array.from(view), [1.5, -2]);
  assert.equal(view.buffer, backing.buffer, "aligned data is viewed, not copied");
  const odd = backing.subarray(1, 9);
  odd.writeFloatLE(3, 0);
  odd.writeFloatLE(4, 4);
  const copy = tensorToValues({ name: "b", datatype: "FP32", shape: [2], data: odd }) as Float32Array;
  assert.deepEqual(Array.from(copy), [3, 4]);
  assert.notEqual(copy.buffer, backing.buffer);
  const i64 = backing.subarray(1, 9);
  i64.writeBigInt64LE(-7n);
  assert.deepEqual(Array.from(tensorToValues({ name: "c", datatype: "INT64", shape: [1], data: i64 }) as BigInt64Array), [-7n]);
});

test("tensorToBuffers: BYTES elements as Buffers; other types refused", () => {
  const blobs = [Buffer.from([0xff, 0]), Buffer.alloc(0)];
  assert.deepEqual(tensorToBuffers({ name: "b", datatype: "BYTES", shape: [2], data: blobs }), blobs);
  expectError(() => tensorToBuffers(byType().get("FP32")!), "INVALID_TENSOR", "in_FP32", "BYTES");
});

test("valueToTensor infers datatype and shape", () => {
  const check = (v: unknown, datatype: string, shape: number[], params?: Record<string, unknown>): Tensor => {
    const t = valueToTensor("v", v);
    assert.equal(t.datatype, datatype, `datatype of ${String(v)}`);
    assert.deepEqual(t.shape, shape);
    assert.deepEqual(t.parameters, params);
    return t;
  };
  assert.deepEqual(check("hi", "BYTES", [1]).data, [Buffer.from("hi")]);
  check(["a", "b"], "BYTES", [2]);
  check([["a", "b", "c"]], "BYTES", [1, 3]);
  const blob = Buffer.from([0xff]);
  assert.equal((check(blob, "BYTES", [1], { content_type: "application/octet-stream" }).data as Buffer[])[0], blob);
  check([blob, Buffer.alloc(0)], "BYTES", [2], { content_type: "application/octet-stream" });
  check(3, "FP64", [1]);
  assert.equal(
    (
      check(
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        "FP64",
        [2, 3],
      ).data as Buffer
    ).readDoubleLE(5 * 8),
    6,
  );
  check([], "FP64", [0]);
  check([[], []], "FP64", [2, 0]);
  assert.deepEqual([...(check(true, "BOOL", [1]).data as Buffer)], [1]);
  check([[true], [false]], "BOOL", [2, 1]);
  check(5n, "INT64", [1]);
  check([1n, -2n], "INT64", [2]);
  check(2n ** 63n, "UINT64", [1]);
  const typed: Array<[ArrayBufferView, string]> = [
    [new Uint8Array(3), "UINT8"],
    [new Int8Array(3), "INT8"],
    [new Uint16Array(3), "UINT16"],
    [new Int16Array(3), "INT16"],
    [new Uint32Array(3), "UINT32"],
    [new Int32Array(3), "INT32"],
    [new BigInt64Array(3), "INT64"],
    [new BigUint64Array(3), "UINT64"],
    [new Float32Array(3), "FP32"],
    [new Float64Array(3), "FP64"],
  ];
  for (const [arr, dt] of typed) {
    const t = check(arr, dt, [3]);
    assert.equal((t.data as Buffer).buffer, arr.buffer, `${dt} is zero-copy`);
  }
  for (const v of [{ a: 1 }, null, undefined, [1, "a"], [[1, 2], [3]], [{ x: 1 }], new Date(0)]) {
    const t = check(v, "BYTES", [1], { content_type: "application/json" });
    assert.equal((t.data as Buffer[])[0]!.toString(), JSON.stringify(v === undefined ? null : v));
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  expectError(() => valueToTensor("c", cyclic), "INVALID_TENSOR", "'c'", "JSON");
  expectError(() => valueToTensor("f", () => 1), "INVALID_TENSOR", "'f'");
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assert.equal(valueToTensor("deep", deep).shape.length, 100_000); // iterative: no stack overflow
});

test("valueToTensor converts to an explicit datatype", () => {
  const h = valueToTensor("h", [0.5, 1.5, 65504], "FP16");
  assert.deepEqual(
    [0, 1, 2].map((i) => (h.data as Buffer).readUInt16LE(i * 2)),
    [0x3800, 0x3e00, 0x7bff],
  );
  assert.deepEqual(Array.from(tensorToValues(h) as Float32Array), [0.5, 1.5, 65504]);
  assert.deepEqual(
    valueToTensor(
      "i",
      [
        [1, 2],
        [3, 4],
      ],
      "INT32",
    ).shape,
    [2, 2],
  );
  assert.deepEqual(Array.from(tensorToValues(valueToTensor("f", new Float32Array([1.5, 2]), "FP64")) as Float64Array), [1.5, 2]);
  assert.deepEqual(Array.from(tensorToValues(valueToTensor("b", new BigInt64Array([3n]), "INT32")) as Int32Array), [3]);
  const raw = valueToTensor("r", Buffer.from([0x00, 0x3c, 0x00, 0xc0]), "FP16");
  assert.deepEqual([raw.shape, Array.from(tensorToValues(raw) as Float32Array)], [[2], [1, -2]]);
  assert.deepEqual(valueToTensor("s", 7, "UINT8").shape, [1]);
  assert.deepEqual(valueToTensor("big", [2n ** 63n - 1n], "INT64").shape, [1]);
  assert.equal(valueToTensor("j", { a: 1 }, "BYTES").parameters?.content_type, "application/json");
  expectError(() => valueToTensor("x", [300], "INT8"), "INVALID_TENSOR", "'x'", "300");
  expectError(() => valueToTensor("x", "abc", "FP32"), "INVALID_TENSOR", "'x'", '"abc"');
  expectError(() => valueToTensor("x", [[1, 2], [3]], "FP32"), "INVALID_TENSOR", "ragged");
  expectError(() => valueToTensor("x", { a: 1 }, "FP32"), "INVALID_TENSOR", "FP32");
  expectError(() => valueToTensor("x", Buffer.alloc(3), "FP16"), "INVALID_TENSOR", "3 bytes");
  expectError(() => valueToTensor("x", [1], "FP128" as never), "INVALID_TENSOR", "FP128");
});

test("handlerResultToResponse: full OIP responses pass (JSON or internal form), validated", () => {
  const jsonForm = handlerResultToResponse(
    { model_name: "other", outputs: [{ name: "y", datatype: "INT32", shape: [2], data: [1, 2] }], parameters: { p: 1 } },
    { modelName: "m", id: "r1" },
  );
  assert.equal(jsonForm.modelName, "other");
  assert.equal(jsonForm.id, "r1");
  assert.deepEqual(jsonForm.parameters, { p: 1 });
  assert.deepEqual(Array.from(tensorToValues(jsonForm.outputs[0]!) as Int32Array), [1, 2]);
  const internal = handlerResultToResponse(
    {
      outputs: [
        { name: "y", datatype: "FP32", shape: [1], data: Buffer.alloc(4) },
        { name: "s", datatype: "BYTES", shape: [1], data: [Buffer.from("x")] },
      ],
    },
    { modelName: "m" },
  );
  assert.equal(internal.modelName, "m");
  assert.equal(internal.outputs.length, 2);
  expectError(
    () => handlerResultToResponse({ outputs: [{ name: "y", datatype: "FP32", shape: [2], data: [1] }] }, { modelName: "m" }),
    "INVALID_TENSOR",
    "output 'y'",
    "expected 2",
  );
  expectError(
    () => handlerResultToResponse({ outputs: [{ name: "y", datatype: "FP32", shape: [2], data: Buffer.alloc(4) }] }, { modelName: "m" }),
    "INVALID_TENSOR",
    "output 'y'",
  );
  expectError(
    () => handlerResultToResponse({ outputs: [{ name: "y", datatype: "X", shape: [1], data: [1] }] }, { modelName: "m" }),
    "INVALID_TENSOR",
    "output 'y'",
    "X",
  );
});

test("handlerResultToResponse: objects of tensor-able values → one output per key; anything else → 'output'", () => {
  const two = handlerResultToResponse({ label: "cat", score: 0.9, mask: new Uint8Array([1, 0]) }, { modelName: "m" });
  assert.deepEqual(
    two.outputs.map((o) => [o.name, o.datatype, o.shape]),
    [
      ["label", "BYTES", [1]],
      ["score", "FP64", [1]],
      ["mask", "UINT8", [2]],
    ],
  );
  const nested = handlerResultToResponse({ a: { b: 1 }, c: 2 }, { modelName: "m" });
  assert.deepEqual(
    nested.outputs.map((o) => [o.name, o.parameters?.content_type]),
    [["output", "application/json"]],
  );
  assert.deepEqual(
    handlerResultToResponse(42, { modelName: "m", id: "i" }).outputs.map((o) => [o.name, o.datatype]),
    [["output", "FP64"]],
  );
  assert.equal(handlerResultToResponse(42, { modelName: "m", id: "i" }).id, "i");
  assert.equal(handlerResultToResponse({}, { modelName: "m" }).outputs[0]!.name, "output");
});

test("responseToValue inverts handlerResultToResponse, also across every wire format", () => {
  const cases: Array<[unknown, unknown]> = [
    ["cat", "cat"],
    [0.5, 0.5],
    [true, true],
    [5n, 5n],
    [null, null],
    [Buffer.from([0xff, 0]), Buffer.from([0xff, 0])],
    [
      { label: "cat", score: 0.9 },
      { label: "cat", score: 0.9 },
    ],
    [{ a: { b: [1, 2] } }, { a: { b: [1, 2] } }],
    [
      [1, "a"],
      [1, "a"],
    ],
    [[0.5], 0.5],
    [[1, 2, 3], new Float64Array([1, 2, 3])],
    [
      [
        [1, 2],
        [3, 4],
      ],
      new Float64Array([1, 2, 3, 4]),
    ],
    [
      ["x", "y"],
      ["x", "y"],
    ],
    [
      [true, false],
      [true, false],
    ],
    [new Int16Array([-1, 2]), new Int16Array([-1, 2])],
  ];
  for (const [value, expected] of cases) {
    const res = handlerResultToResponse(value, { modelName: "m" });
    assert.deepEqual(responseToValue(res), expected, `direct: ${String(value)}`);
    const formats: Array<["json" | "protobuf", InferRequest | undefined]> = [
      ["json", undefined],
      ["json", { inputs: [], parameters: { binary_data_output: true } }],
      ["protobuf", undefined],
    ];
    for (const [format, req] of formats) {
      if (Buffer.isBuffer(value) && format === "json" && req === undefined) {
        // non-UTF-8 bytes have no JSON form: refused, naming the output (binary outputs carry them)
        expectError(() => encodeResponse(res, format, req), "INVALID_TENSOR", "output 'output'", "UTF-8");
        continue;
      }
      const enc = encodeResponse(res, format, req);
      const back = decodeResponse(enc.body, { contentType: enc.contentType, headerLength: enc.headerLength });
      assert.deepEqual(responseToValue(back), expected, `${format}${req ? "+binary" : ""}: ${String(value)}`);
    }
  }
});

test("responseToValue: outputs keyed by name; odd names stay plain keys", () => {
  const one = responseToValue({ modelName: "m", outputs: [valueToTensor("probs", [0.1, 0.9])] }) as Record<string, unknown>;
  assert.deepEqual(Object.keys(one), ["probs"]);
  const proto = responseToValue({ modelName: "m", outputs: [valueToTensor("__proto__", "x"), valueToTensor("output", 1)] }) as Record<
    string,
    unknown
  >;
  assert.ok(Object.hasOwn(proto, "__proto__"));
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(responseToValue({ modelName: "m", outputs: [] }), {});
  const badJson: Tensor = {
    name: "output",
    datatype: "BYTES",
    shape: [1],
    data: [Buffer.from("{")],
    parameters: { content_type: "application/json" },
  };
  expectError(() => responseToValue({ modelName: "m", outputs: [badJson] }), "INVALID_TENSOR", "'output'");
});

test("inputsToRequest: object → one input per key; tensor arrays as is; anything else → 'input'", () => {
  const r = inputsToRequest(
    { x: new Float32Array([1, 2]), prompt: "hi", n: 3 },
    {
      id: "q",
      modelName: "m",
      parameters: { t: 1 },
      outputs: ["y", { name: "z", parameters: { binary_data: true } }],
      datatypes: { n: "INT32" },
    },
  );
  assert.deepEqual(
    r.inputs.map((t) => [t.name, t.datatype, t.shape]),
    [
      ["x", "FP32", [2]],
      ["prompt", "BYTES", [1]],
      ["n", "INT32", [1]],
    ],
  );
  assert.deepEqual(
    [r.id, r.modelName, r.parameters, r.outputs],
    ["q", "m", { t: 1 }, [{ name: "y" }, { name: "z", parameters: { binary_data: true } }]],
  );
  const oip = inputsToRequest([
    { name: "a", datatype: "FP32", shape: [2], data: [1, 2] },
    { name: "b", datatype: "BYTES", shape: [1], data: [Buffer.from("x")] },
  ]);
  assert.deepEqual(
    oip.inputs.map((t) => [t.name, t.datatype]),
    [
      ["a", "FP32"],
      ["b", "BYTES"],
    ],
  );
  expectError(() => inputsToRequest([{ name: "a", datatype: "FP32", shape: [2], data: [1] }]), "INVALID_TENSOR", "input 'a'");
  expectError(
    () =>
      inputsToRequest([
        { name: "a", datatype: "FP32", shape: [1], data: [1] },
        { name: "a", datatype: "FP32", shape: [1], data: [1] },
      ]),
    "INVALID_TENSOR",
    "more than once",
  );
  assert.deepEqual(
    inputsToRequest([1, 2, 3]).inputs.map((t) => [t.name, t.datatype, t.shape]),
    [["input", "FP64", [3]]],
  );
  assert.deepEqual(inputsToRequest([1, 2], { datatypes: { input: "INT8" } }).inputs[0]!.datatype, "INT8");
  assert.equal(inputsToRequest("text").inputs[0]!.datatype, "BYTES");
  assert.equal(inputsToRequest({}).inputs[0]!.parameters?.content_type, "application/json");
  expectError(() => inputsToRequest(1, { parameters: { bad: {} as never } }), "INVALID_PARAMETER", "'bad'");
  // ...and the request survives the wire
  for (const format of ["json", "protobuf"] as const) {
    const enc = encodeRequest(r, format);
    const back = decodeRequest(enc.body, { contentType: enc.contentType, headerLength: enc.headerLength });
    assert.deepEqual(Array.from(tensorToValues(back.inputs[0]!) as Float32Array), [1, 2]);
  }
});
