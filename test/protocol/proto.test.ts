import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { decodeProtoRequest, encodeProtoRequest, protoPath, protoTypes, readModelName } from "../../src/protocol/proto-codec.js";
import type { Tensor } from "../../src/protocol/types.js";
import { allTypesTensors, expectError } from "./helpers.js";

const enc = (msg: Record<string, unknown>): Buffer => Buffer.from(protoTypes().request.encode(msg).finish());

test("the .proto is found from the package root and defines the service and messages", () => {
  assert.ok(existsSync(protoPath()));
  const root = protoTypes().root;
  const svc = root.lookupService("inference.GRPCInferenceService");
  assert.deepEqual(Object.keys(svc.methods).sort(), [
    "ModelInfer",
    "ModelMetadata",
    "ModelReady",
    "ModelStreamInfer",
    "ServerLive",
    "ServerMetadata",
    "ServerReady",
  ]);
  assert.ok(svc.methods.ModelStreamInfer!.requestStream && svc.methods.ModelStreamInfer!.responseStream);
  const param = root.lookupType("inference.InferParameter");
  assert.deepEqual(Object.fromEntries(Object.values(param.fields).map((f) => [f.name, f.id])), {
    bool_param: 1,
    int64_param: 2,
    string_param: 3,
    double_param: 4,
    uint64_param: 5,
  });
  const req = root.lookupType("inference.ModelInferRequest");
  assert.equal(req.fields.raw_input_contents!.id, 7);
  assert.equal(root.lookupType("inference.ModelStreamInferResponse").fields.infer_response!.id, 2);
});

test("readModelName reads fields 1 and 2 of real encoded requests", () => {
  const inputs: Tensor[] = allTypesTensors();
  const body = encodeProtoRequest({ modelName: "resnet-50", modelVersion: "3", id: "r", inputs, parameters: { p: 1 } });
  assert.deepEqual(readModelName(body), { modelName: "resnet-50", modelVersion: "3" });
  assert.deepEqual(readModelName(encodeProtoRequest({ inputs })), { modelName: "", modelVersion: "" });
  assert.deepEqual(readModelName(Buffer.alloc(0)), { modelName: "", modelVersion: "" });
  assert.deepEqual(readModelName(enc({ model_name: "ünï✓" })), { modelName: "ünï✓", modelVersion: "" });
});

test("readModelName finds fields anywhere, last one wins, as protobufjs does", () => {
  const late = Buffer.concat([
    enc({ inputs: [{ name: "x", datatype: "BOOL", shape: [1] }], raw_input_contents: [Buffer.from([1])] }),
    enc({ model_name: "late", model_version: "7" }),
  ]);
  assert.deepEqual(readModelName(late), { modelName: "late", modelVersion: "7" });
  assert.equal(decodeProtoRequest(late).modelName, "late");
  const twice = Buffer.concat([enc({ model_name: "a" }), enc({ model_name: "b" })]);
  assert.equal(readModelName(twice).modelName, "b");
  // unknown fields of every wire type are skipped
  const unknown = Buffer.concat([
    Buffer.from([0xa0, 0x01, 0xac, 0x02]), // field 20 varint 300
    Buffer.from([0xa9, 0x01]),
    Buffer.alloc(8), // field 21 fixed64
    Buffer.from([0xb5, 0x01]),
    Buffer.alloc(4), // field 22 fixed32
    Buffer.from([0xb2, 0x01, 0x02, 0x0a, 0x05]), // field 22 bytes whose content looks like a field-1 tag
    enc({ model_version: "v" }),
  ]);
  assert.deepEqual(readModelName(unknown), { modelName: "", modelVersion: "v" });
});

test("readModelName on garbage → INVALID_PROTOBUF", () => {
  const cases = [
    Buffer.from([0x0a, 0x05, 0x61]), // length past the end
    Buffer.from([0x0a]), // missing length
    Buffer.from([0x08, 0x01]), // field 1 as a varint
    Buffer.from([0x11, 0, 0, 0, 0, 0, 0, 0, 0]), // field 2 as fixed64
    Buffer.from([0x02, 0x00]), // field number 0
    Buffer.from([0x0b]),
    Buffer.from([0x0c]),
    Buffer.from([0x0e]),
    Buffer.from([0x0f]), // wire types 3, 4, 6, 7
    Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // 11-byte varint
    Buffer.from([0x19, 0x00]), // truncated fixed64
    Buffer.from("GET / HTTP/1.1\r\n"),
  ];
  for (const c of cases) {
    const e = expectError(() => readModelName(c), "INVALID_PROTOBUF");
    assert.equal(e.httpStatus, 400);
  }
});

test("readModelName agrees with a full decode on random inputs, and never throws anything else", () => {
  let seed = 99;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 24;
  };
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.alloc(1 + (i % 40));
    for (let k = 0; k < b.length; k++) b[k] = i % 3 === 0 ? [0x0a, 0x12, 0x03, 0x61, 0x62, 0x63][rnd() % 6]! : rnd();
    let names: { modelName: string; modelVersion: string } | undefined;
    try {
      names = readModelName(b);
    } catch (err) {
      assert.equal((err as { code?: string }).code, "INVALID_PROTOBUF");
    }
    if (names !== undefined) {
      try {
        const m = protoTypes().request.decode(b) as unknown as { model_name: string; model_version: string };
        assert.deepEqual(names, { modelName: m.model_name, modelVersion: m.model_version });
      } catch {
        /* protobufjs may reject nested content we do not look at */
      }
    }
  }
});

test("parameters: every InferParameter choice decodes; numbers encode as int64 or double", () => {
  const body = enc({
    parameters: {
      b: { bool_param: true },
      i: { int64_param: -42 },
      s: { string_param: "x" },
      d: { double_param: 0.25 },
      u: { uint64_param: 7 },
      none: {},
    },
    inputs: [{ name: "t", datatype: "BOOL", shape: [0], parameters: { content_type: { string_param: "text/plain" } } }],
    outputs: [{ name: "o", parameters: { binary_data: { bool_param: true } } }],
  });
  const req = decodeProtoRequest(body);
  assert.deepEqual(req.parameters, { b: true, i: -42, s: "x", d: 0.25, u: 7 });
  assert.deepEqual(req.inputs[0]!.parameters, { content_type: "text/plain" });
  assert.deepEqual(req.outputs, [{ name: "o", parameters: { binary_data: true } }]);
  const again = protoTypes().request.decode(encodeProtoRequest({ parameters: { n: 3, f: 1.5 }, inputs: req.inputs })) as unknown as {
    parameters: Record<string, Record<string, unknown>>;
  };
  assert.ok(Object.hasOwn(again.parameters.n!, "int64_param"));
  assert.equal(again.parameters.f!.double_param, 1.5);
});
