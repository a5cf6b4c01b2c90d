// API server + 3 replica processes from the CLI: each capability lands on the right replica over
// REST /infer, REST /v2/models/{m}/infer and gRPC ModelInfer; a stream arrives chunk by chunk.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { decodeProtoResponse, encodeProtoRequest } from "../../src/protocol/proto-codec.js";
import { Client } from "../../src/sdk/client.js";
import { Cleanups, DEMO, FIXTURES, registryIds, startApiServerProc, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";

const hooks = new Cleanups();
let api: Proc;
let rest: Client;
let grpc: Client;

describe("routing through the API server to replica processes", () => {
  before(async () => {
    api = await startApiServerProc(hooks);
    await Promise.all([
      startReplicaProc(hooks, api.ready.url!, path.join(DEMO, "chat_app.ts:app"), ["--replica-id", "replica-a"]),
      startReplicaProc(hooks, api.ready.url!, path.join(DEMO, "embed_app.ts:app"), ["--replica-id", "replica-b"]),
      startReplicaProc(hooks, api.ready.url!, path.join(FIXTURES, "test_app.ts:app"), ["--replica-id", "replica-c"]),
    ]);
    await waitFor("3 replicas registered", async () => (await registryIds(api.ready.url!)).length === 3);
    rest = new Client({ apiServer: api.ready.url! });
    grpc = new Client({ apiServer: api.ready.grpc!, protocol: "grpc" });
    hooks.after(() => Promise.all([rest.close(), grpc.close()]));
  });
  after(() => hooks.run());

  test("REST /infer with X-Capability headers reaches the right replica", async () => {
    const chat = (await rest.infer({ type: "chat", model: "llama-70b" }, { text: "hi" })) as Record<string, string>;
    assert.equal(chat.replica, "replica-a");
    assert.match(chat.text ?? "", /\[llama-70b\].*hi/);
    const who = await rest.infer({ type: "whoami" }, { x: 1 });
    assert.equal(who, "replica-c");
    const embed = (await rest.infer({ type: "embed" }, { text: "hello" })) as { embedding: Float32Array };
    assert.ok(embed.embedding instanceof Float32Array);
    assert.equal(embed.embedding.length, 8);
  });

  test("REST /v2/models/{m}/infer: the model name is the capability, id echoed", async () => {
    const res = await fetch(`${api.ready.url}/v2/models/demo/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "req-7", inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["yo"] }] }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: string; model_name: string; outputs: { name: string; data: string[] }[] };
    assert.equal(body.id, "req-7");
    assert.equal(body.model_name, "demo");
    assert.equal(body.outputs.find((o) => o.name === "replica")!.data[0], "replica-a");
  });

  test("requested outputs: only those are answered, in the asked order; an unknown one → 400", async () => {
    const ask = async (outputs: { name: string }[]) =>
      fetch(`${api.ready.url}/v2/models/demo/infer`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ outputs, inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["yo"] }] }),
      });
    const res = await ask([{ name: "replica" }]);
    const body = (await res.json()) as { outputs: { name: string }[] };
    assert.deepEqual(
      body.outputs.map((o) => o.name),
      ["replica"],
    );
    const bad = await ask([{ name: "nope" }]);
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /'nope' is not produced.*'text'/);
  });

  test("REST /infer with a protobuf ModelInferRequest body answers protobuf", async () => {
    const body = encodeProtoRequest({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [Buffer.from("pb")] }] });
    const res = await fetch(`${api.ready.url}/infer`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf", "x-capability-type": "chat", "x-capability-model": "demo" },
      body,
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-protobuf");
    const decoded = decodeProtoResponse(Buffer.from(await res.arrayBuffer()));
    const text = decoded.outputs.find((o) => o.name === "text")!;
    assert.match((text.data as Buffer[])[0]!.toString(), /you said: pb/);
  });

  test("unknown model → 404 MODEL_NOT_FOUND naming a few of the registered capabilities", async () => {
    const res = await fetch(`${api.ready.url}/v2/models/nope/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1], data: [1] }] }),
    });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { code: string; error: string };
    assert.equal(body.code, "MODEL_NOT_FOUND");
    // A few of the 12 registered capabilities (the demo chat app's include model=assistant), then where the rest are.
    assert.match(body.error, /registered: \{type=.* and 7 more \(GET \/registry lists them all\)$/);
  });

  test("gRPC ModelInfer: model_name and x-capability-* metadata route the call", async () => {
    const chat = (await grpc.infer({ model: "demo" }, { text: "over grpc" })) as Record<string, string>;
    assert.equal(chat.replica, "replica-a");
    assert.match(chat.text ?? "", /over grpc/);
    const who = await grpc.infer({ type: "whoami" }, { x: 1 });
    assert.equal(who, "replica-c");
    assert.equal(await grpc.isAlive(), true);
    assert.equal(await grpc.isModelReady("demo"), true);
    assert.equal(await grpc.isModelReady("absent"), false);
  });

  test("a handler's error keeps its message and code through every hop (REST and gRPC)", async () => {
    for (const client of [rest, grpc]) {
      await assert.rejects(client.infer({ type: "fail" }, { text: "xyz" }), (err: { code: string; message: string }) => {
        assert.equal(err.code, "WORKER_ERROR");
        assert.match(err.message, /boom: xyz/);
        return true;
      });
      await assert.rejects(client.infer({ type: "fail_coded" }, { a: 1 }), { code: "INVALID_PARAMETER", message: /expected 1-10, got 99/ });
    }
  });

  for (const kind of ["rest", "grpc"] as const) {
    test(`a stream arrives chunk by chunk over ${kind}: the first chunk before the handler finishes`, async () => {
      const client = kind === "rest" ? rest : grpc;
      const it = client.stream({ type: "gated_stream" }, { x: 1 })[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.value, "first");
      // The handler is now blocked on its gate: only another request can let it finish.
      assert.equal(await rest.infer({ type: "release" }, { x: 1 }), "released");
      assert.equal((await it.next()).value, "second");
      assert.equal((await it.next()).done, true);
    });
  }

  test("SSE over curl-like fetch: data: events, then the end", async () => {
    const res = await fetch(`${api.ready.url}/infer/stream`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-capability-type": "gated_stream" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] }),
    });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    assert.match(Buffer.from(value!).toString(), /^data: \{.*"first"/);
    await rest.infer({ type: "release" }, { x: 1 });
    let rest_ = "";
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      rest_ += Buffer.from(r.value).toString();
    }
    assert.match(rest_, /"second"/);
  });

  test("a streaming capability called without streaming → 400 NOT_STREAMING", async () => {
    await assert.rejects(rest.infer({ type: "gated_stream" }, { x: 1 }), { code: "NOT_STREAMING" });
  });

  test("/route answers the replica for a capability; /v2 metadata", async () => {
    const route = (await (await fetch(`${api.ready.url}/route?type=embed`)).json()) as { replica_id: string; http_endpoint: string };
    assert.equal(route.replica_id, "replica-b");
    const direct = new Client({ endpoint: route.http_endpoint });
    try {
      const embed = (await direct.infer({ type: "embed" }, { text: "direct" })) as { embedding: Float32Array };
      assert.equal(embed.embedding.length, 8);
    } finally {
      await direct.close();
    }
    const meta = (await (await fetch(`${api.ready.url}/v2`)).json()) as { extensions: string[] };
    assert.ok(meta.extensions.includes("binary_tensor_data"));
  });
});

test("--unmatched=delegate sends an unknown capability to a random replica instead of answering 404 at the gateway", async (t) => {
  const api = await startApiServerProc(t, ["--unmatched", "delegate"]);
  await startReplicaProc(t, api.ready.url!, path.join(FIXTURES, "test_app.ts:app"), ["--replica-id", "only"]);
  await waitFor("registered", async () => (await registryIds(api.ready.url!)).length === 1);
  const client = new Client({ apiServer: api.ready.url! });
  t.after(() => client.close());
  // The replica it reached has no such handler and delegates back; nobody serves it, so the
  // gateway ends it with 404 naming the capability and the replica it went through.
  await assert.rejects(client.infer({ type: "mystery" }, { x: 1 }), (err: { code: string; message: string }) => {
    assert.equal(err.code, "NO_MATCHING_CAPABILITY");
    assert.match(err.message, /\{type=mystery\}.*delegated by only/);
    return true;
  });
});
