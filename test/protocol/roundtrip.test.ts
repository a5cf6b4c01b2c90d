import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeJsonRequest, decodeJsonResponse, encodeJsonRequest, encodeJsonResponse } from "../../src/protocol/json-codec.js";
import {
  decodeProtoRequest,
  decodeProtoResponse,
  decodeStreamResponse,
  encodeProtoRequest,
  encodeProtoResponse,
  encodeStreamResponse,
  protoTypes,
} from "../../src/protocol/proto-codec.js";
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from "../../src/protocol/codec.js";
import { DATATYPE_INFO } from "../../src/protocol/datatypes.js";
import type { InferRequest, Tensor } from "../../src/protocol/types.js";
import { SAMPLES, allTypesJson, allTypesTensors, json } from "./helpers.js";

function assertSameTensors(actual: Tensor[], expected: Tensor[]): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((e, i) => {
    const a = actual[i]!;
    assert.equal(a.name, e.name);
    assert.equal(a.datatype, e.datatype);
    assert.deepEqual(a.shape, e.shape);
    assert.deepEqual(a.parameters, e.parameters, `${e.name} parameters`);
    if (Array.isArray(e.data)) {
      assert.ok(Array.isArray(a.data), e.name);
      assert.deepEqual(
        (a.data as Buffer[]).map((b) => b.toString("hex")),
        e.data.map((b) => b.toString("hex")),
        e.name,
      );
    } else {
      assert.ok(Buffer.isBuffer(a.data), e.name);
      assert.equal((a.data as Buffer).toString("hex"), e.data.toString("hex"), e.name);
    }
  });
}

test("all 14 datatypes: JSON → internal → JSON gives the same flat data (flat and nested input)", () => {
  for (const nested of [false, true]) {
    const req = decodeJsonRequest(json(allTypesJson(nested)));
    assert.equal(req.id, "req-1");
    assert.equal(req.inputs.length, 14);
    for (const t of req.inputs) {
      const info = DATATYPE_INFO[t.datatype];
      if (info.size > 0) assert.equal((t.data as Buffer).length, 6 * info.size, t.name);
    }
    const enc = encodeJsonResponse({ modelName: "m", id: req.id, outputs: req.inputs });
    assert.equal(enc.contentType, "application/json");
    assert.equal(enc.headerLength, undefined);
    const body = JSON.parse(enc.body.toString()) as {
      model_name: string;
      id: string;
      outputs: Array<{ name: string; datatype: string; shape: number[]; data: unknown[] }>;
    };
    assert.equal(body.model_name, "m");
    assert.equal(body.id, "req-1");
    for (const o of body.outputs) {
      const dt = o.datatype as keyof typeof SAMPLES;
      assert.deepEqual(o.shape, [2, 3]);
      assert.deepEqual(o.data, SAMPLES[dt], dt);
    }
  }
});

test("internal values are little-endian bytes", () => {
  const byName = new Map(allTypesTensors().map((t) => [t.datatype, t]));
  assert.equal((byName.get("INT16")!.data as Buffer).readInt16LE(0), -32768);
  assert.equal((byName.get("UINT64")!.data as Buffer).readBigUInt64LE(8), BigInt(Number.MAX_SAFE_INTEGER));
  assert.equal((byName.get("FP16")!.data as Buffer).readUInt16LE(2), 0xc000);
  assert.equal((byName.get("BF16")!.data as Buffer).readUInt16LE(0), 0x3f80);
  assert.deepEqual([...(byName.get("BOOL")!.data as Buffer)], [1, 0, 1, 0, 0, 1]);
});

test("all 14 datatypes: internal → binary extension → internal (request and response)", () => {
  const inputs = allTypesTensors();
  const enc = encodeJsonRequest({ id: "b", inputs }, { binary: true });
  assert.equal(enc.contentType, "application/octet-stream");
  assert.ok(enc.headerLength! > 0);
  const header = JSON.parse(enc.body.subarray(0, enc.headerLength).toString()) as {
    inputs: Array<{ parameters: { binary_data_size: number }; data?: unknown }>;
    parameters: Record<string, unknown>;
  };
  assert.equal(header.parameters.binary_data_output, true);
  assert.ok(header.inputs.every((i) => typeof i.parameters.binary_data_size === "number" && i.data === undefined));
  const back = decodeJsonRequest(enc.body, enc.headerLength);
  assertSameTensors(back.inputs, inputs);
  assert.equal(back.inputs[0]!.parameters, undefined, "binary_data_size is stripped");

  const res = encodeJsonResponse({ modelName: "m", outputs: inputs }, { all: true });
  assertSameTensors(decodeJsonResponse(res.body, res.headerLength).outputs, inputs);
});

test("all 14 datatypes: internal → protobuf raw contents → internal (request, response, stream)", () => {
  const inputs = allTypesTensors();
  const req: InferRequest = { id: "p", modelName: "m", modelVersion: "2", inputs, parameters: { a: 1, b: "x", c: true, d: 0.5 } };
  const back = decodeProtoRequest(encodeProtoRequest(req));
  assertSameTensors(back.inputs, inputs);
  assert.equal(back.id, "p");
  assert.equal(back.modelName, "m");
  assert.equal(back.modelVersion, "2");
  assert.deepEqual(back.parameters, { a: 1, b: "x", c: true, d: 0.5 });

  const resBody = encodeProtoResponse({ modelName: "m", id: "p", outputs: inputs });
  const decoded = protoTypes().response.decode(resBody) as unknown as {
    raw_output_contents: Buffer[];
    outputs: Array<{ contents?: unknown }>;
  };
  assert.equal(decoded.raw_output_contents.length, 14, "outputs are always encoded raw");
  assertSameTensors(decodeProtoResponse(resBody).outputs, inputs);

  const stream = decodeStreamResponse(encodeStreamResponse({ response: { modelName: "m", outputs: inputs } }));
  assertSameTensors(stream.response!.outputs, inputs);
  assert.deepEqual(decodeStreamResponse(encodeStreamResponse({ errorMessage: "boom" })), { errorMessage: "boom" });
});

test("protobuf typed contents → internal for every datatype with a contents field", () => {
  const expected = allTypesTensors().filter((t) => DATATYPE_INFO[t.datatype].contents !== null);
  assert.equal(expected.length, 12);
  const inputs = expected.map((t) => {
    const field = DATATYPE_INFO[t.datatype].contents!;
    let values = SAMPLES[t.datatype];
    if (t.datatype === "BYTES") values = values.map((s) => Buffer.from(s as string));
    return { name: t.name, datatype: t.datatype, shape: [2, 3], contents: { [field]: values } };
  });
  const body = protoTypes().request.encode({ model_name: "m", inputs }).finish();
  assertSameTensors(decodeProtoRequest(Buffer.from(body)).inputs, expected);
});

test("protobuf INT64/UINT64 typed contents keep the full 64-bit range", () => {
  const body = protoTypes()
    .request.encode({
      inputs: [
        { name: "i", datatype: "INT64", shape: [3], contents: { int64_contents: ["-9223372036854775808", "9223372036854775807", -5] } },
        { name: "u", datatype: "UINT64", shape: [2], contents: { uint64_contents: ["18446744073709551615", 7] } },
      ],
    })
    .finish();
  const [i, u] = decodeProtoRequest(Buffer.from(body)).inputs;
  const ib = i!.data as Buffer;
  assert.deepEqual(
    [0, 1, 2].map((k) => ib.readBigInt64LE(k * 8)),
    [-(2n ** 63n), 2n ** 63n - 1n, -5n],
  );
  const ub = u!.data as Buffer;
  assert.deepEqual(
    [0, 1].map((k) => ub.readBigUInt64LE(k * 8)),
    [2n ** 64n - 1n, 7n],
  );
  // ...and survive raw protobuf and binary JSON, but not plain JSON (documented).
  assertSameTensors(decodeProtoRequest(encodeProtoRequest({ inputs: [i!, u!] })).inputs, [i!, u!]);
});

test("FP16/BF16 raw bits are carried bit-exact, NaN payloads included", () => {
  const bits = [0x0000, 0x8000, 0x7c00, 0xfc00, 0x7c01, 0x7e00, 0xfe3f, 0x0001, 0x3c00, 0x7bff, 0x7f80, 0x7fc1, 0xffff];
  const data = Buffer.alloc(bits.length * 2);
  for (const [i, b] of bits.entries()) data.writeUInt16LE(b, i * 2);
  const tensors: Tensor[] = [
    { name: "h", datatype: "FP16", shape: [bits.length], data },
    { name: "b", datatype: "BF16", shape: [bits.length], data: Buffer.from(data) },
  ];
  const viaBinary = encodeJsonRequest({ inputs: tensors }, { binary: true });
  assertSameTensors(decodeJsonRequest(viaBinary.body, viaBinary.headerLength).inputs, tensors);
  assertSameTensors(decodeProtoRequest(encodeProtoRequest({ inputs: tensors })).inputs, tensors);
  assertSameTensors(decodeProtoResponse(encodeProtoResponse({ modelName: "m", outputs: tensors })).outputs, tensors);
});

test("BYTES with arbitrary binary data (non-UTF-8, empty element) through binary ext and protobuf", () => {
  const elements = [Buffer.from([0xff, 0xfe, 0x00, 0x80]), Buffer.alloc(0), Buffer.from("ok"), Buffer.alloc(300, 0xc3)];
  const t: Tensor = { name: "blob", datatype: "BYTES", shape: [2, 2], data: elements };
  const viaBinary = encodeJsonRequest({ inputs: [t] }, { binary: true });
  assertSameTensors(decodeJsonRequest(viaBinary.body, viaBinary.headerLength).inputs, [t]);
  const res = encodeJsonResponse({ modelName: "m", outputs: [t] }, { all: true });
  assertSameTensors(decodeJsonResponse(res.body, res.headerLength).outputs, [t]);
  assertSameTensors(decodeProtoRequest(encodeProtoRequest({ inputs: [t] })).inputs, [t]);
  const typed = protoTypes()
    .request.encode({ inputs: [{ name: "blob", datatype: "BYTES", shape: [2, 2], contents: { bytes_contents: elements } }] })
    .finish();
  assertSameTensors(decodeProtoRequest(Buffer.from(typed)).inputs, [t]);
});

test("binary outputs are chosen per output, by request parameter, or overridden per output", () => {
  const outputs = allTypesTensors().slice(0, 3); // BOOL, UINT8, UINT16
  const names = outputs.map((o) => o.name);
  const binaryNames = (req: InferRequest | undefined): string[] => {
    const enc = encodeResponse({ modelName: "m", outputs }, "json", req);
    const header = JSON.parse(enc.body.subarray(0, enc.headerLength ?? enc.body.length).toString()) as {
      outputs: Array<{ name: string; parameters?: { binary_data_size?: number } }>;
    };
    assertSameTensors(decodeResponse(enc.body, { contentType: enc.contentType, headerLength: enc.headerLength }).outputs, outputs);
    return header.outputs.filter((o) => o.parameters?.binary_data_size !== undefined).map((o) => o.name);
  };
  assert.deepEqual(binaryNames(undefined), []);
  assert.deepEqual(binaryNames({ inputs: [], outputs: [{ name: names[1]!, parameters: { binary_data: true } }] }), [names[1]]);
  assert.deepEqual(binaryNames({ inputs: [], parameters: { binary_data_output: true } }), names);
  assert.deepEqual(
    binaryNames({
      inputs: [],
      parameters: { binary_data_output: true },
      outputs: [{ name: names[0]!, parameters: { binary_data: false } }],
    }),
    names.slice(1),
  );
});

test("codec façade: encodeRequest/decodeRequest in every format", () => {
  const inputs = allTypesTensors();
  for (const [format, binary] of [
    ["json", true],
    ["protobuf", false],
  ] as const) {
    const enc = encodeRequest({ inputs, id: "f" }, format, { binary });
    const back = decodeRequest(enc.body, { contentType: enc.contentType, headerLength: enc.headerLength });
    assertSameTensors(back.inputs, inputs);
    const res = encodeResponse({ modelName: "m", outputs: back.inputs }, format, back);
    assertSameTensors(decodeResponse(res.body, { contentType: res.contentType, headerLength: res.headerLength }).outputs, inputs);
  }
  const plain = encodeRequest({ inputs: inputs.filter((t) => t.datatype !== "BYTES") }, "json");
  assert.equal(plain.contentType, "application/json");
  assert.equal(decodeRequest(plain.body, {}).inputs.length, 13);
});

test("zero-element tensors round trip everywhere", () => {
  const t: Tensor[] = [
    { name: "e", datatype: "FP32", shape: [0, 3], data: Buffer.alloc(0) },
    { name: "s", datatype: "BYTES", shape: [0], data: [] },
  ];
  const j = decodeJsonRequest(
    json({
      inputs: [
        { name: "e", datatype: "FP32", shape: [0, 3], data: [] },
        { name: "s", datatype: "BYTES", shape: [0], data: [] },
      ],
    }),
  );
  assertSameTensors(j.inputs, t);
  const b = encodeJsonRequest({ inputs: t }, { binary: true });
  assertSameTensors(decodeJsonRequest(b.body, b.headerLength).inputs, t);
  assertSameTensors(decodeProtoRequest(encodeProtoRequest({ inputs: t })).inputs, t);
});
