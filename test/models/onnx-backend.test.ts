// Issue 29.1–2: an ONNX file served with no user code (`app: onnx:FILE`). The tests write their own
// models (test/helpers/onnx-models.ts), start an API server and replicas, and check: metadata equals
// the graph (REST and gRPC, API server and replica); answers equal onnxruntime-node called directly
// on the same inputs, for FP32, INT64 and BOOL, over REST JSON, the binary extension and gRPC; a
// wrong shape is a 400 naming the input; with batch_size 32, 64 concurrent requests take ≤ 10 runs
// and answer the same; a model with a fixed first dimension runs one by one (said in metadata).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as ort from "onnxruntime-node";
import { decodeResponse, encodeRequest } from "../../src/protocol/codec.js";
import { serviceDefinition } from "../../src/protocol/grpc-service.js";
import type { InferRequest, Tensor } from "../../src/protocol/types.js";
import { Client } from "../../src/sdk/client.js";
import { sum } from "../helpers/metrics.js";
import { mlpModel, typedModel, writeModel } from "../helpers/onnx-models.js";
import { Cleanups, registryIds, startApiServerProc, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";

const hooks = new Cleanups();
const dir = mkdtempSync(path.join(tmpdir(), "anyserve-onnx-"));
const files = {
  mlp: writeModel(dir, "mlp", "1", mlpModel()),
  typed: writeModel(dir, "typed", "3", typedModel()),
  fixed: writeModel(dir, "fixed", "1", mlpModel(2)),
};
let api: Proc;
let batched: Proc;

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

/** onnxruntime-node in this process: the answers anyserve must give. */
const sessions = new Map<string, Promise<ort.InferenceSession>>();
async function direct(file: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  if (!sessions.has(file)) sessions.set(file, ort.InferenceSession.create(file));
  return (await (await sessions.get(file)!).run(feeds)) as Record<string, ort.Tensor>;
}

function tensor(name: string, datatype: Tensor["datatype"], shape: number[], view: ArrayBufferView): Tensor {
  return { name, datatype, shape, data: Buffer.from(view.buffer, view.byteOffset, view.byteLength) };
}

function sameAs(got: Tensor, want: ort.Tensor): void {
  assert.deepEqual(got.shape, [...want.dims], got.name);
  const w = want.data as ArrayBufferView;
  assert.equal((got.data as Buffer).toString("hex"), Buffer.from(w.buffer, w.byteOffset, w.byteLength).toString("hex"), got.name);
}

const x = (rows: number, seed: number) => Float32Array.from({ length: rows * 4 }, (_, i) => Math.sin(seed * 7 + i));

describe("ONNX backend: app onnx:FILE", () => {
  before(async () => {
    api = await startApiServerProc(hooks);
    await startReplicaProc(hooks, api.ready.url!, `onnx:${files.typed}`);
    await startReplicaProc(hooks, api.ready.url!, `onnx:${files.fixed}`, ["--batch-size", "8"]);
    batched = await startReplicaProc(hooks, api.ready.url!, `onnx:${files.mlp}`, [
      "--batch-size",
      "32",
      "--batch-wait-ms",
      "20",
      "--queue-size",
      "256",
    ]);
    await waitFor("three replicas registered", async () => (await registryIds(api.ready.url!)).length === 3);
  });
  after(async () => {
    await hooks.run();
    for (const s of sessions.values()) await (await s).release();
    rmSync(dir, { recursive: true, force: true });
  });

  test("metadata is the model's graph: names, datatypes, shapes with -1 for dynamic dims (REST and gRPC)", async () => {
    const want = {
      name: "typed",
      versions: ["3"],
      platform: "onnxruntime_onnx",
      inputs: [
        { name: "n", datatype: "INT64", shape: [-1, 2] },
        { name: "b", datatype: "BOOL", shape: [-1, 2] },
      ],
      outputs: [
        { name: "doubled", datatype: "INT64", shape: [-1, 2] },
        { name: "flipped", datatype: "BOOL", shape: [-1, 2] },
      ],
    };
    for (const base of [api.ready.url!]) {
      const res = await fetch(`${base}/v2/models/typed`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { ...want, parameters: { execution_provider: "cpu", batching: "first_dimension" } });
    }
    const meta = (await grpcCall(api.ready.grpc!, "ModelMetadata", { name: "typed", version: "" })) as typeof want;
    const dims = (t: { shape: unknown[] }) => ({ ...t, shape: t.shape.map((d) => Number(String(d))) });
    assert.deepEqual({ ...meta, inputs: meta.inputs.map(dims), outputs: meta.outputs.map(dims) }, want);
    const fixed = (await (await fetch(`${api.ready.url}/v2/models/fixed`)).json()) as { inputs: unknown; parameters: unknown };
    assert.deepEqual(fixed.inputs, [{ name: "x", datatype: "FP32", shape: [2, 4] }]);
    assert.deepEqual(fixed.parameters, { execution_provider: "cpu", batching: "one_by_one" });
  });

  test("FP32, INT64 and BOOL answers equal onnxruntime-node's, over REST JSON, the binary extension and gRPC", async () => {
    const n = new BigInt64Array([1n, -2n, 3n, 123456789012n]);
    const b = new Uint8Array([1, 0, 0, 1]);
    const typedWant = await direct(files.typed, { n: new ort.Tensor("int64", n, [2, 2]), b: new ort.Tensor("bool", b, [2, 2]) });
    const xs = x(3, 1);
    const mlpWant = await direct(files.mlp, { x: new ort.Tensor("float32", xs, [3, 4]) });
    const cases: { model: string; req: InferRequest; want: Record<string, ort.Tensor> }[] = [
      { model: "typed", req: { inputs: [tensor("n", "INT64", [2, 2], n), tensor("b", "BOOL", [2, 2], b)] }, want: typedWant },
      { model: "mlp", req: { inputs: [tensor("x", "FP32", [3, 4], xs)] }, want: mlpWant },
    ];
    const grpcClient = new Client({ apiServer: api.ready.grpc!, protocol: "grpc" });
    try {
      for (const c of cases) {
        for (const binary of [false, true]) {
          const enc = encodeRequest({ ...c.req, ...(binary ? { parameters: { binary_data_output: true } } : {}) }, "json", { binary });
          const headers: Record<string, string> = { "content-type": enc.contentType };
          if (enc.headerLength !== undefined) headers["inference-header-content-length"] = String(enc.headerLength);
          const res = await fetch(`${api.ready.url}/v2/models/${c.model}/infer`, { method: "POST", headers, body: enc.body });
          const body = Buffer.from(await res.arrayBuffer());
          assert.equal(res.status, 200, body.toString());
          const hl = res.headers.get("inference-header-content-length");
          const decoded = decodeResponse(body, {
            contentType: res.headers.get("content-type")!,
            ...(hl ? { headerLength: Number(hl) } : {}),
          });
          assert.equal(binary, hl !== null, "binary out when asked");
          for (const t of decoded.outputs) sameAs(t, c.want[t.name]!);
          assert.equal(decoded.outputs.length, Object.keys(c.want).length);
        }
        const viaGrpc = await grpcClient.inferRaw({ model: c.model }, c.req.inputs);
        for (const t of viaGrpc.outputs) sameAs(t, c.want[t.name]!);
      }
    } finally {
      await grpcClient.close();
    }
  });

  test("a wrong shape, datatype or input name is a 400 naming the input", async () => {
    const bad = [
      [{ name: "x", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }, /input 'x': expected shape \[-1, 4\], got \[1, 3\]/],
      [{ name: "x", datatype: "INT32", shape: [1, 4], data: [1, 2, 3, 4] }, /input 'x': expected datatype FP32, got INT32/],
      [{ name: "z", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }, /input 'z' is not an input of the model/],
    ] as const;
    for (const [input, message] of bad) {
      const res = await fetch(`${api.ready.url}/v2/models/mlp/infer`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ inputs: [input] }),
      });
      const body = (await res.json()) as { code: string; error: string };
      assert.equal(res.status, 400, body.error);
      assert.equal(body.code, "INVALID_TENSOR");
      assert.match(body.error, message);
    }
    const fixed = await fetch(`${api.ready.url}/v2/models/fixed/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [3, 4], data: Array(12).fill(0) }] }),
    });
    assert.equal(fixed.status, 400);
    assert.match(((await fixed.json()) as { error: string }).error, /input 'x': expected shape \[2, 4\], got \[3, 4\]/);
  });

  test("batch_size 32: 64 concurrent requests take at most 10 session runs, each answer its own; a bad one fails alone", async () => {
    const metrics = async () => (await fetch(`${batched.ready.http}/metrics`)).text();
    const before = sum(await metrics(), "anyserve_replica_batch_size_count");
    const inputs = Array.from({ length: 64 }, (_, i) => x(1 + (i % 3), i));
    const wants = await Promise.all(inputs.map((v) => direct(files.mlp, { x: new ort.Tensor("float32", v, [v.length / 4, 4]) })));
    const call = (body: unknown) =>
      fetch(`${api.ready.url}/v2/models/mlp/infer`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const [answers, badOne] = await Promise.all([
      Promise.all(inputs.map((v) => call({ inputs: [{ name: "x", datatype: "FP32", shape: [v.length / 4, 4], data: [...v] }] }))),
      call({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 5], data: [1, 2, 3, 4, 5] }] }),
    ]);
    assert.equal(badOne.status, 400);
    for (const [i, res] of answers.entries()) {
      const body = (await res.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
      assert.equal(res.status, 200, JSON.stringify(body));
      const want = wants[i]!.y!;
      assert.deepEqual(body.outputs[0]!.shape, [...want.dims]);
      assert.deepEqual(body.outputs[0]!.data, [...(want.data as Float32Array)], `request ${i}`);
    }
    const runs = sum(await metrics(), "anyserve_replica_batch_size_count") - before;
    assert.ok(runs >= 2 && runs <= 10, `65 requests took ${runs} batches`);
  });
});
