// Answers that say what happened, wherever a request enters (issue 25 items 7, 9, 12, 13; issue 24
// items 4, 8, 11): an API server and two replica processes started by hand, reached over REST, gRPC
// and the frame hop. A request nobody serves is 404 everywhere (never 508); a full object store is
// 507 and never opens the circuit; garbage on any gRPC method is INVALID_ARGUMENT with our code; a
// replica delegates a gRPC stream it does not serve; hand-started replicas show up by service.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { decodeStreamResponse, encodeProtoRequest } from "../../src/protocol/proto-codec.js";
import { inputsToRequest } from "../../src/protocol/values.js";
import { answerError } from "../../src/transport/call-meta.js";
import { FrameClient } from "../../src/transport/frame-client.js";
import { Client } from "../../src/sdk/client.js";
import { BIN, Cleanups, FIXTURES, registryIds, startApiServerProc, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";

const run = promisify(execFile);
const hooks = new Cleanups();
const ROUTING_APP = path.join(FIXTURES, "routing_app.ts:app");
const TEST_APP = path.join(FIXTURES, "test_app.ts");
const BODY = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1], data: [1] }] });

let api: Proc;
/** test_app, started without --service. */
let plain: Proc;

interface ErrorBody {
  code: string;
  error: string;
}

async function post(url: string, headers: Record<string, string> = {}, body = BODY): Promise<{ status: number; body: ErrorBody }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  return { status: res.status, body: (await res.json()) as ErrorBody };
}

/** A unary gRPC call with raw bytes both ways: the status name, details and our code, or OK. */
function grpcRaw(
  target: string,
  method: string,
  body: Buffer,
  md = new grpc.Metadata(),
): Promise<{ status: string; code: string; details: string }> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve) => {
    client.makeUnaryRequest(`/inference.GRPCInferenceService/${method}`, id, id, body, md, (err) => {
      client.close();
      resolve(
        err
          ? { status: grpc.status[err.code]!, code: String(err.metadata?.get("x-anyserve-code")[0] ?? ""), details: err.details }
          : { status: "OK", code: "", details: "" },
      );
    });
  });
}

describe("answers that say what happened", () => {
  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "anyserve-answers-"));
    hooks.after(() => rmSync(dir, { recursive: true, force: true }));
    api = await startApiServerProc(hooks);
    // The second: routing_app as service "store", with an object store capped at ~1 MB.
    [plain] = await Promise.all([
      startReplicaProc(hooks, api.ready.url!, TEST_APP, ["--replica-id", "plain-1"]),
      startReplicaProc(hooks, api.ready.url!, ROUTING_APP, [
        "--replica-id",
        "store-1",
        "--service",
        "store",
        "--object-store",
        dir,
        "--object-store-max-gb",
        "0.001",
      ]),
    ]);
    await waitFor("2 replicas registered", async () => (await registryIds(api.ready.url!)).length === 2);
  });
  after(() => hooks.run());

  test("nobody serves it: 404 MODEL_NOT_FOUND / NO_MATCHING_CAPABILITY at the API server and at a replica (REST, gRPC, frames)", async () => {
    for (const base of [api.ready.url!, plain.ready.http!]) {
      const model = await post(`${base}/v2/models/nope/infer`);
      assert.equal(model.status, 404, `${base}: ${JSON.stringify(model.body)}`);
      assert.equal(model.body.code, "MODEL_NOT_FOUND");
      assert.match(model.body.error, /model 'nope'/);
      const versioned = await post(`${base}/v2/models/nope/versions/3/infer`);
      assert.deepEqual([versioned.status, versioned.body.code], [404, "MODEL_NOT_FOUND"]);
      const byHeader = await post(`${base}/infer`, { "x-capability-type": "nope" });
      assert.deepEqual([byHeader.status, byHeader.body.code], [404, "NO_MATCHING_CAPABILITY"], JSON.stringify(byHeader.body));
      const stream = await post(`${base}/infer/stream`, { "x-capability-type": "nope" });
      assert.deepEqual([stream.status, stream.body.code], [404, "NO_MATCHING_CAPABILITY"]);
    }
    for (const target of [api.ready.grpc!, plain.ready.grpc!]) {
      const model = await grpcRaw(target, "ModelInfer", encodeProtoRequest({ modelName: "nope", inputs: [] }));
      assert.deepEqual([model.status, model.code], ["NOT_FOUND", "MODEL_NOT_FOUND"], `${target}: ${model.details}`);
      const md = new grpc.Metadata();
      md.set("x-capability-type", "nope");
      const byMeta = await grpcRaw(target, "ModelInfer", encodeProtoRequest({ inputs: [] }), md);
      assert.deepEqual([byMeta.status, byMeta.code], ["NOT_FOUND", "NO_MATCHING_CAPABILITY"], byMeta.details);
    }
    // The frame hop, as the gateway (or a direct client) uses it.
    const frames = new FrameClient({ url: plain.ready.http! });
    try {
      const reply = await frames.request(
        { k: "infer", q: { type: "nope" }, f: "json", to: 5_000, rid: "frame-1", ct: "application/json" },
        Buffer.from(BODY),
      );
      assert.equal(answerError(reply.meta, "plain-1")?.code, "NO_MATCHING_CAPABILITY");
    } finally {
      await frames.close();
    }
  });

  test("a non-ASCII model name reaches its replica through a replica that delegates it", async () => {
    // routing_app has no model; ask the test_app replica for a capability only the store replica serves.
    const grpcClient = new Client({ apiServer: plain.ready.grpc!, protocol: "grpc", timeout: 10_000 });
    try {
      await assert.rejects(grpcClient.infer({ model: "modèle-模型" }, { x: 1 }), { code: "MODEL_NOT_FOUND", message: /modèle-模型/ });
    } finally {
      await grpcClient.close();
    }
  });

  test("the 404 message names at most 5 registered capabilities, then how many more and where to see them", async () => {
    const { body } = await post(`${api.ready.url}/infer`, { "x-capability-type": "nope" });
    const listed = body.error.match(/\{[^}]*\}/g) ?? [];
    assert.equal(listed.length, 1 + 5, body.error); // the query itself, then 5 registered
    const registered = (
      (await (await fetch(`${api.ready.url}/registry`)).json()) as { replicas: { capabilities: unknown[] }[] }
    ).replicas.flatMap((r) => r.capabilities).length;
    assert.match(body.error, new RegExp(`and ${registered - 5} more \\(GET /registry lists them all\\)`));
  });

  test("gRPC: garbage on every method is INVALID_ARGUMENT with x-anyserve-code; a non-UTF-8 name and -bin metadata are client errors", async () => {
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0x13, 0x01]);
    for (const target of [api.ready.grpc!, plain.ready.grpc!]) {
      for (const method of ["ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"]) {
        const r = await grpcRaw(target, method, garbage);
        assert.deepEqual([r.status, r.code], ["INVALID_ARGUMENT", "INVALID_PROTOBUF"], `${target} ${method}: ${r.details}`);
      }
      // model_name = 0xc3 0x28: not UTF-8.
      const badName = Buffer.from([0x0a, 0x02, 0xc3, 0x28]);
      for (const method of ["ModelInfer", "ModelMetadata", "ModelReady"]) {
        const r = await grpcRaw(target, method, badName);
        assert.deepEqual([r.status, r.code], ["INVALID_ARGUMENT", "INVALID_CAPABILITY"], `${target} ${method}: ${r.details}`);
        assert.match(r.details, /not valid UTF-8/);
      }
      const md = new grpc.Metadata();
      md.set("x-capability-type-bin", Buffer.from([1, 2, 3]));
      const bin = await grpcRaw(target, "ModelInfer", encodeProtoRequest({ inputs: [] }), md);
      assert.deepEqual([bin.status, bin.code], ["INVALID_ARGUMENT", "INVALID_CAPABILITY"], bin.details);
      assert.match(bin.details, /x-capability-type-bin.*send 'x-capability-type'/);
      // Well-formed small calls still answer.
      assert.equal((await grpcRaw(target, "ServerLive", Buffer.alloc(0))).status, "OK");
    }
  });

  test("gRPC ModelStreamInfer sent to a replica that does not serve it is delegated, chunk by chunk", async () => {
    const client = new grpc.Client(plain.ready.grpc!, grpc.credentials.createInsecure());
    const id = (b: Buffer): Buffer => b;
    const md = new grpc.Metadata();
    md.set("x-capability-type", "count");
    const call = client.makeBidiStreamRequest("/inference.GRPCInferenceService/ModelStreamInfer", id, id, md);
    const chunks: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (b: Buffer) => {
        const m = decodeStreamResponse(b);
        if (m.errorMessage) reject(new Error(m.errorMessage));
        else chunks.push(String(m.response!.outputs[0]!.data[0]));
      });
      call.on("end", resolve);
      call.on("error", reject);
    });
    call.write(encodeProtoRequest(inputsToRequest({ n: 3 })));
    call.end();
    try {
      await done;
    } finally {
      client.close();
    }
    assert.deepEqual(chunks, ["chunk-0", "chunk-1", "chunk-2"]);
  });

  test("a full object store answers 507 every time and never opens the circuit: freed space is used at once", async () => {
    const put = (kb: number) => post(`${api.ready.url}/infer`, { "x-capability-type": "store_put" }, inputs({ kb }));
    assert.equal((await put(900)).status, 200);
    // Well past the circuit breaker's 20 requests at >= 50 % failures.
    for (let i = 0; i < 30; i++) {
      const full = await put(500);
      assert.deepEqual([full.status, full.body.code], [507, "OBJECT_STORE_FULL"], `attempt ${i}: ${JSON.stringify(full.body)}`);
    }
    assert.equal((await post(`${api.ready.url}/infer`, { "x-capability-type": "store_free" })).status, 200);
    const after = await put(500);
    assert.equal(after.status, 200, JSON.stringify(after.body));
    const registry = (await (await fetch(`${api.ready.url}/registry`)).json()) as {
      replicas: { replica_id: string; circuits: { state: string }[]; outlier: { consecutive_failures: number } }[];
    };
    const entry = registry.replicas.find((r) => r.replica_id === "store-1")!;
    assert.deepEqual(
      entry.circuits.map((c) => c.state).filter((s) => s !== "closed"),
      [],
    );
    assert.equal(entry.outlier.consecutive_failures, 0);
  });

  test("a ref with size=-1 is 400 OBJECT_REF_INVALID, not 404", async () => {
    const res = await post(
      `${api.ready.url}/infer`,
      { "x-capability-type": "store_get" },
      inputs({ ref: "obj:gone?size=-1&type=application%2Fjson" }),
    );
    assert.deepEqual([res.status, res.body.code], [400, "OBJECT_REF_INVALID"], JSON.stringify(res.body));
    assert.match(res.body.error, /size: expected a byte count/);
  });

  test("hand-started replicas show in `anyserve status --json` and /api/services, by service (the app file's name without --service)", async () => {
    const { stdout } = await run(process.execPath, [BIN, "status", "--json", "--api-server", api.ready.url!]);
    const status = JSON.parse(stdout) as { services: { name: string; replicas: { replica_id: string; health: string }[] }[] };
    const byName = Object.fromEntries(status.services.map((s) => [s.name, s.replicas.map((r) => r.replica_id)]));
    assert.deepEqual(byName, { store: ["store-1"], test_app: ["plain-1"] });
    const one = (await (await fetch(`${api.ready.url}/api/services/test_app`)).json()) as {
      name: string;
      status: string;
      replicas: unknown[];
    };
    assert.deepEqual([one.name, one.status, one.replicas.length], ["test_app", "registered", 1]);
    const table = (await run(process.execPath, [BIN, "status", "--api-server", api.ready.url!])).stdout;
    assert.match(table, /test_app/);
    assert.doesNotMatch(table, /No services/);
  });
});

describe("--unmatched delegate: counting", () => {
  const hooks = new Cleanups();
  let dapi: Proc;
  before(async () => {
    dapi = await startApiServerProc(hooks, ["--unmatched", "delegate"]);
    await startReplicaProc(hooks, dapi.ready.url!, ROUTING_APP, ["--replica-id", "d-1"]);
    await waitFor("the replica registered", async () => (await registryIds(dapi.ready.url!)).length === 1);
  });
  after(() => hooks.run());

  test("successful requests are not counted as unmatched; a capability nobody serves is 404, never 508", async () => {
    for (let i = 0; i < 20; i++) {
      const ok = await post(`${dapi.ready.url}/infer`, { "x-capability-type": "who" });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    }
    let stats = (await (await fetch(`${dapi.ready.url}/api/stats`)).json()) as { requests: number; unmatched: number; errors: number };
    assert.deepEqual([stats.requests, stats.unmatched, stats.errors], [20, 0, 0]);
    const services = (await (await fetch(`${dapi.ready.url}/api/services`)).json()) as {
      services: { name: string; stats: { requests: number } }[];
    };
    assert.deepEqual(
      services.services.map((s) => [s.name, s.stats.requests]),
      [["routing_app", 20]],
    );
    // Delegated to the one replica, which sends it back; the API server then answers "not found".
    for (const [route, code] of [
      ["/infer", "NO_MATCHING_CAPABILITY"],
      ["/v2/models/nope/infer", "MODEL_NOT_FOUND"],
    ] as const) {
      const miss = await post(`${dapi.ready.url}${route}`, route === "/infer" ? { "x-capability-type": "nope" } : {});
      assert.deepEqual([miss.status, miss.body.code], [404, code], JSON.stringify(miss.body));
    }
    stats = (await (await fetch(`${dapi.ready.url}/api/stats`)).json()) as typeof stats;
    assert.ok(stats.unmatched >= 2, JSON.stringify(stats));
    assert.equal(stats.requests - stats.unmatched, 20, "the successful ones stay counted under their service");
  });
});

function inputs(values: Record<string, string | number>): string {
  return JSON.stringify({
    inputs: Object.entries(values).map(([name, v]) =>
      typeof v === "number" ? { name, datatype: "INT32", shape: [1], data: [v] } : { name, datatype: "BYTES", shape: [1], data: [v] },
    ),
  });
}
