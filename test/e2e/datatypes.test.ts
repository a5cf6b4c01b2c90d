// All 14 datatypes round-trip through the API server and a replica process, in JSON, in the
// binary tensor extension (FP16/BF16 raw, BYTES with binary data) and over gRPC; shape/size
// mismatches are refused with 400 naming the tensor.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { decodeResponse, encodeRequest } from "../../src/protocol/codec.js";
import { decodeJsonRequest } from "../../src/protocol/json-codec.js";
import type { InferRequest, Tensor } from "../../src/protocol/types.js";
import * as grpcjs from "@grpc/grpc-js";
import { protoTypes } from "../../src/protocol/proto-codec.js";
import { Client } from "../../src/sdk/client.js";
import { Cleanups, FIXTURES, registryIds, startApiServerProc, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";
import { allTypesJson, SAMPLES } from "../protocol/helpers.js";

const hooks = new Cleanups();
let api: Proc;

async function post(body: Buffer, headers: Record<string, string>): Promise<Response> {
  return fetch(`${api.ready.url}/infer`, { method: "POST", headers: { "x-capability-type": "echo", ...headers }, body });
}

function sameBytes(got: Tensor, want: Tensor): void {
  assert.equal(got.datatype, want.datatype, got.name);
  assert.deepEqual(got.shape, want.shape, got.name);
  if (Array.isArray(want.data)) {
    assert.deepEqual(
      (got.data as Buffer[]).map((b) => b.toString("hex")),
      want.data.map((b) => b.toString("hex")),
      got.name,
    );
  } else {
    assert.equal((got.data as Buffer).toString("hex"), want.data.toString("hex"), got.name);
  }
}

describe("datatypes through gateway and replica", () => {
  before(async () => {
    api = await startApiServerProc(hooks);
    await startReplicaProc(hooks, api.ready.url!, path.join(FIXTURES, "test_app.ts:app"));
    await waitFor("registered", async () => (await registryIds(api.ready.url!)).length === 1);
  });
  after(() => hooks.run());

  test("JSON: nested data in, every datatype's values back (flat, row-major)", async () => {
    const res = await post(Buffer.from(JSON.stringify(allTypesJson(true))), { "content-type": "application/json" });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: string; outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[] };
    assert.equal(body.id, "req-1");
    assert.equal(body.outputs.length, 14);
    for (const out of body.outputs) {
      assert.deepEqual(out.shape, [2, 3], out.name);
      assert.deepEqual(out.data, SAMPLES[out.datatype as keyof typeof SAMPLES], out.name);
    }
  });

  test("binary tensor extension: every datatype byte-exact both ways (FP16/BF16 raw)", async () => {
    const req: InferRequest = decodeJsonRequest(Buffer.from(JSON.stringify(allTypesJson())));
    req.parameters = { binary_data_output: true };
    const enc = encodeRequest(req, "json", { binary: true });
    assert.ok(enc.headerLength !== undefined);
    const res = await post(enc.body, { "content-type": enc.contentType, "inference-header-content-length": String(enc.headerLength) });
    assert.equal(res.status, 200);
    const hl = res.headers.get("inference-header-content-length");
    assert.ok(hl !== null, "the answer uses the binary extension");
    const decoded = decodeResponse(Buffer.from(await res.arrayBuffer()), {
      contentType: res.headers.get("content-type")!,
      headerLength: Number(hl),
    });
    for (const [i, t] of decoded.outputs.entries()) sameBytes(t, req.inputs[i]!);
  });

  test("BYTES with binary (non-UTF-8) elements survive the binary extension and gRPC", async () => {
    const blob: Tensor = {
      name: "blob",
      datatype: "BYTES",
      shape: [3],
      data: [Buffer.from([0xff, 0x00, 0xfe]), Buffer.alloc(0), Buffer.from("ok")],
    };
    const enc = encodeRequest({ inputs: [blob], parameters: { binary_data_output: true } }, "json", { binary: true });
    const res = await post(enc.body, { "content-type": enc.contentType, "inference-header-content-length": String(enc.headerLength) });
    assert.equal(res.status, 200);
    const decoded = decodeResponse(Buffer.from(await res.arrayBuffer()), {
      contentType: res.headers.get("content-type")!,
      headerLength: Number(res.headers.get("inference-header-content-length")),
    });
    sameBytes(decoded.outputs[0]!, blob);
    const grpc = new Client({ apiServer: api.ready.grpc!, protocol: "grpc" });
    try {
      const viaGrpc = await grpc.inferRaw({ type: "echo" }, [blob]);
      sameBytes(viaGrpc.outputs[0]!, blob);
    } finally {
      await grpc.close();
    }
  });

  test("gRPC: every datatype byte-exact (raw contents)", async () => {
    const grpc = new Client({ apiServer: api.ready.grpc!, protocol: "grpc" });
    try {
      const tensors = decodeJsonRequest(Buffer.from(JSON.stringify(allTypesJson()))).inputs;
      const res = await grpc.inferRaw({ type: "echo" }, tensors);
      for (const [i, t] of res.outputs.entries()) sameBytes(t, tensors[i]!);
    } finally {
      await grpc.close();
    }
  });

  test("shape/size mismatches are refused with 400 naming the tensor (JSON, binary, gRPC)", async () => {
    const bad = { inputs: [{ name: "weights", datatype: "FP32", shape: [2, 3], data: [1, 2, 3, 4, 5] }] };
    const res = await post(Buffer.from(JSON.stringify(bad)), { "content-type": "application/json" });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; error: string };
    assert.equal(body.code, "INVALID_TENSOR");
    assert.match(body.error, /'weights'.*6.*5|'weights'.*expected/);

    const header = Buffer.from(
      JSON.stringify({ inputs: [{ name: "raw_in", datatype: "FP32", shape: [4], parameters: { binary_data_size: 8 } }] }),
    );
    const bin = Buffer.concat([header, Buffer.alloc(8)]);
    const r2 = await post(bin, { "content-type": "application/octet-stream", "inference-header-content-length": String(header.length) });
    assert.equal(r2.status, 400);
    const b2 = (await r2.json()) as { code: string; error: string };
    assert.equal(b2.code, "INVALID_TENSOR");
    assert.match(b2.error, /raw_in/);

    // The SDK client refuses such a tensor itself, so hand-made protobuf bytes go straight to the server.
    const proto = protoTypes().request;
    const raw = Buffer.from(
      proto
        .encode(
          proto.fromObject({
            model_name: "",
            inputs: [{ name: "short_in", datatype: "INT32", shape: [3] }],
            raw_input_contents: [Buffer.alloc(8)],
          }),
        )
        .finish(),
    );
    const err = await rawGrpcInfer(api.ready.grpc!, raw, { "x-capability-type": "echo" });
    assert.equal(err?.code, 3 /* INVALID_ARGUMENT */);
    assert.match(err!.details, /short_in/);
    assert.equal(err!.metadata.get("x-anyserve-code")[0], "INVALID_TENSOR");
  });
});

/** Sends raw ModelInferRequest bytes and returns the gRPC error (or undefined on success). */
function rawGrpcInfer(address: string, body: Buffer, metadata: Record<string, string>): Promise<grpcjs.ServiceError | undefined> {
  const client = new grpcjs.Client(address, grpcjs.credentials.createInsecure());
  const md = new grpcjs.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      "/inference.GRPCInferenceService/ModelInfer",
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      md,
      (err) => {
        client.close();
        resolve(err ?? undefined);
      },
    );
  });
}
