// Issue 24.10: which OIP route reaches which capability, and model metadata. `/v2/models/{m}`
// (and gRPC `model_name`) reaches `model=m`, else `type=m`; metadata lists the tensors a handler
// declared once (`app.model(name, fn, {inputs, outputs})`), or its example's inputs, on the API
// server and on the replica, over REST and gRPC.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/protocol/grpc-service.js";
import { decodeProtoResponse, encodeProtoRequest } from "../../src/protocol/proto-codec.js";
import { Cleanups, FIXTURES, registryIds, startApiServerProc, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";

const hooks = new Cleanups();
let api: Proc;
let replica: Proc;

const ServiceClient = grpc.makeGenericClientConstructor(serviceDefinition(), "GRPCInferenceService");
type Unary = (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

function grpcCall(address: string, method: string, req: unknown): Promise<unknown> {
  const client = new ServiceClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Unary>;
  return new Promise((resolve, reject) => {
    client[method]!(req, new grpc.Metadata(), (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    });
  });
}

const CLASSIFIER = {
  name: "classifier",
  versions: ["2"],
  platform: "test-platform",
  inputs: [{ name: "text", datatype: "BYTES", shape: [-1] }],
  outputs: [
    { name: "label", datatype: "BYTES", shape: [1] },
    { name: "score", datatype: "FP32", shape: [1] },
  ],
};

/** gRPC answers int64 shapes as Longs or strings; compare as numbers. */
function normalize(meta: unknown): unknown {
  const m = meta as { name: string; versions: string[]; platform: string; inputs: { shape: unknown[] }[]; outputs: { shape: unknown[] }[] };
  const dims = (t: { shape: unknown[] }) => ({ ...t, shape: t.shape.map((d) => Number(String(d))) });
  return { ...m, inputs: m.inputs.map(dims), outputs: m.outputs.map(dims) };
}

describe("OIP model routes and metadata", () => {
  before(async () => {
    api = await startApiServerProc(hooks);
    replica = await startReplicaProc(hooks, api.ready.url!, path.join(FIXTURES, "oip_app.ts:app"));
    await waitFor("the replica registered", async () => (await registryIds(api.ready.url!)).length === 1);
  });
  after(() => hooks.run());

  test("GET /v2/models/{m}: the declared inputs and outputs, on the API server and on the replica", async () => {
    for (const base of [api.ready.url!, replica.ready.http!]) {
      const res = await fetch(`${base}/v2/models/classifier`);
      assert.equal(res.status, 200, base);
      assert.deepEqual(await res.json(), CLASSIFIER, base);
    }
  });

  test("gRPC ModelMetadata: the same, with datatypes and shapes", async () => {
    for (const address of [api.ready.grpc!, replica.ready.grpc!]) {
      const meta = await grpcCall(address, "ModelMetadata", { name: "classifier", version: "" });
      assert.deepEqual(normalize(meta), CLASSIFIER, address);
    }
  });

  test("a capability with only a type is reached as /v2/models/{type}: infer, ready, metadata from its example", async () => {
    for (const base of [api.ready.url!, replica.ready.http!]) {
      const res = await fetch(`${base}/v2/models/summarize/infer`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["the doc"] }] }),
      });
      const text = await res.text();
      assert.equal(res.status, 200, `${base}: ${text}`);
      const body = JSON.parse(text) as { model_name: string; outputs: { data: string[] }[] };
      assert.equal(body.model_name, "summarize");
      assert.deepEqual(body.outputs[0]!.data, ["summary of the doc"]);
      assert.equal((await fetch(`${base}/v2/models/summarize/ready`)).status, 200, base);
      const meta = (await (await fetch(`${base}/v2/models/summarize`)).json()) as { inputs: unknown[] };
      assert.deepEqual(meta.inputs, [
        { name: "text", datatype: "BYTES", shape: [1] },
        { name: "ratio", datatype: "FP64", shape: [1] },
      ]);
    }
  });

  test("gRPC ModelInfer with model_name = a type reaches it", async () => {
    const body = encodeProtoRequest({
      modelName: "summarize",
      inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [Buffer.from("pb")] }],
    });
    for (const address of [api.ready.grpc!, replica.ready.grpc!]) {
      const raw = await grpcCall(address, "ModelInfer", body);
      const res = decodeProtoResponse(raw as Buffer);
      assert.equal(res.modelName, "summarize");
      assert.equal((res.outputs[0]!.data as Buffer[])[0]!.toString(), "summary of pb");
    }
  });

  test("a model nobody serves, by model or by type → 404 MODEL_NOT_FOUND", async () => {
    for (const base of [api.ready.url!, replica.ready.http!]) {
      const res = await fetch(`${base}/v2/models/nothing-here`);
      assert.equal(res.status, 404, base);
      assert.equal(((await res.json()) as { code: string }).code, "MODEL_NOT_FOUND");
    }
  });
});
