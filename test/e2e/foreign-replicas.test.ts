// Issue 24.5: any OIP v2 server can be registered as a replica. A stand-in OIP server that is not
// anyserve (test/helpers/oip-standin.ts: node:http + grpc-js, only the OIP v2 REST and gRPC
// routes) is registered with an API server process in the seed's body (`{replica_id, endpoint,
// capabilities}`: OIP gRPC) and with `protocol: oip-rest`; REST and gRPC clients of the API server
// reach it, its errors come back mapped to the catalogue, streams work over gRPC, and a dead
// foreign replica is failed over and marked unhealthy.
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/protocol/grpc-service.js";
import { decodeProtoResponse, encodeProtoRequest } from "../../src/protocol/proto-codec.js";
import { Client } from "../../src/sdk/client.js";
import { startStandIn, type StandIn } from "../helpers/oip-standin.js";
import { Cleanups, startApiServerProc, waitFor, type Proc } from "../helpers/processes.js";
import { pausedGrpcStream, rssMb } from "../helpers/slow-clients.js";

const hooks = new Cleanups();
let api: Proc;
let standIn: StandIn;
let rest: Client;
let grpcClient: Client;

interface RegistryRow {
  replica_id: string;
  protocol: string;
  health: string;
  registered_at: string;
  last_heartbeat: string;
  failed_health_checks: number;
}

/** The secrets the API server issued to the registrations made here (the seed's body brings none). */
const secrets = new Map<string, string>();

async function register(body: Record<string, unknown>): Promise<Response> {
  const res = await fetch(`${api.ready.url}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.ok) {
    const answer = (await res.clone().json()) as { replica_secret?: string };
    if (answer.replica_secret) secrets.set(String(body.replica_id), answer.replica_secret);
  }
  return res;
}

async function row(id: string): Promise<RegistryRow | undefined> {
  const res = await fetch(`${api.ready.url}/registry`);
  return ((await res.json()) as { replicas: RegistryRow[] }).replicas.find((r) => r.replica_id === id);
}

/** The registry's row of `id` once a health probe passed (a foreign replica's last heartbeat is its last passing probe). */
async function probed(id: string): Promise<RegistryRow> {
  const found = await waitFor(`a passing probe of ${id}`, async () => {
    const r = await row(id);
    return r !== undefined && r.last_heartbeat > r.registered_at ? r : undefined;
  });
  return found!;
}

async function unregister(id: string): Promise<void> {
  const res = await fetch(`${api.ready.url}/unregister`, {
    method: "DELETE",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ replica_id: id, replica_secret: secrets.get(id) }),
  });
  assert.equal(res.status, 200);
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function restInfer(route: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  return fetch(`${api.ready.url}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

const TEXT = (text: string) => ({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [text] }] });

describe("foreign OIP v2 servers as replicas", () => {
  before(async () => {
    standIn = await startStandIn();
    hooks.after(() => standIn.close());
    api = await startApiServerProc(hooks, ["--failover", "--health-check-interval", "0.2"]);
    rest = new Client({ apiServer: api.ready.url! });
    grpcClient = new Client({ apiServer: api.ready.grpc!, protocol: "grpc" });
    hooks.after(() => Promise.all([rest.close(), grpcClient.close()]));
    const seed = await register({
      replica_id: "seed-grpc",
      endpoint: standIn.grpcAddress,
      capabilities: [
        { type: "chat", model: "echo-model" },
        { type: "bad", model: "bad-model" },
      ],
    });
    assert.equal(seed.status, 200, await seed.text());
    const viaRest = await register({
      replica_id: "triton-rest",
      protocol: "oip-rest",
      http_endpoint: standIn.restUrl,
      capabilities: [
        { type: "rest-echo", model: "echo-model" },
        { type: "rest-bad", model: "bad-model" },
      ],
    });
    assert.equal(viaRest.status, 200, await viaRest.text());
  });
  after(() => hooks.run());

  test("the seed's registration body is an OIP gRPC replica, healthy once its OIP health probe passed", async () => {
    const r = await probed("seed-grpc");
    assert.equal(r.protocol, "oip-grpc");
    assert.equal(r.health, "healthy");
    assert.equal(r.failed_health_checks, 0);
    const viaRest = await probed("triton-rest");
    assert.equal(viaRest.protocol, "oip-rest");
  });

  test("REST and gRPC clients of the API server reach the OIP gRPC replica, with the capability's model as model_name", async () => {
    const before = standIn.seen.length;
    const byRest = await rest.inferRaw({ type: "chat" }, { text: "over rest" });
    assert.deepEqual(
      byRest.outputs.map((o) => o.name),
      ["text_out"],
    );
    assert.equal((byRest.outputs[0]!.data as Buffer[])[0]!.toString(), "over rest");
    const byGrpc = await grpcClient.inferRaw({ type: "chat" }, { text: "over grpc" });
    assert.equal((byGrpc.outputs[0]!.data as Buffer[])[0]!.toString(), "over grpc");
    const oipRoute = await restInfer("/v2/models/echo-model/infer", {}, { id: "x-1", ...TEXT("oip route") });
    assert.equal(oipRoute.status, 200);
    const body = (await oipRoute.json()) as { id: string; outputs: { name: string; data: string[] }[] };
    assert.equal(body.id, "x-1");
    assert.deepEqual(body.outputs[0]!.data, ["oip route"]);
    assert.deepEqual(standIn.seen.slice(before), ["echo-model", "echo-model", "echo-model"]);
  });

  test("a protobuf body is forwarded with model_name set; the answer comes back as protobuf", async () => {
    const before = standIn.seen.length;
    const body = encodeProtoRequest({
      modelName: "whatever",
      inputs: [{ name: "n", datatype: "INT32", shape: [2], data: Buffer.from(new Int32Array([7, -8]).buffer) }],
    });
    const res = await fetch(`${api.ready.url}/infer`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf", "x-capability-type": "chat" },
      body,
    });
    assert.equal(res.status, 200);
    const decoded = decodeProtoResponse(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual([...new Int32Array(new Uint8Array(decoded.outputs[0]!.data as Buffer).buffer)], [7, -8]);
    assert.deepEqual(standIn.seen.slice(before), ["echo-model"]);
  });

  test("the seed's /infer/json body reaches the OIP gRPC replica and is answered in the seed's form", async () => {
    const res = await restInfer(
      "/infer/json",
      { "x-capability-type": "chat" },
      { inputs: [{ name: "text", datatype: "BYTES", shape: [1], contents: { bytes_contents: ["seed"] } }] },
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as { outputs: { name: string; contents: unknown }[] };
    assert.deepEqual(body.outputs, [{ name: "text_out", datatype: "BYTES", shape: [1], contents: { bytes_contents: ["seed"] } }]);
  });

  test("REST and gRPC clients reach the OIP REST replica at /v2/models/{model}/infer", async () => {
    const before = standIn.seen.length;
    const byRest = await restInfer("/infer", { "x-capability-type": "rest-echo" }, TEXT("rest to rest"));
    assert.equal(byRest.status, 200);
    assert.deepEqual(((await byRest.json()) as { outputs: { data: string[] }[] }).outputs[0]!.data, ["rest to rest"]);
    const byGrpc = await grpcClient.inferRaw({ type: "rest-echo" }, { text: "grpc to rest", n: new Float32Array([1.5, 2]) });
    assert.equal((byGrpc.outputs[0]!.data as Buffer[])[0]!.toString(), "grpc to rest");
    assert.deepEqual([...new Float32Array(new Uint8Array(byGrpc.outputs[1]!.data as Buffer).buffer)], [1.5, 2]);
    assert.equal(standIn.seen.length - before, 2);
  });

  test("a foreign server's error is mapped: 400 / INVALID_ARGUMENT → INVALID_REQUEST, with its message", async () => {
    for (const type of ["bad", "rest-bad"]) {
      const res = await restInfer("/infer", { "x-capability-type": type }, TEXT("x"));
      assert.equal(res.status, 400, type);
      const body = (await res.json()) as { code: string; error: string };
      assert.equal(body.code, "INVALID_REQUEST", type);
      assert.match(body.error, /unexpected shape for bad-model/);
      assert.match(body.error, type === "bad" ? /OIP gRPC replica 'seed-grpc'/ : /OIP REST replica 'triton-rest'.* answered 400/);
      await assert.rejects(grpcClient.inferRaw({ type }, { text: "x" }), (err: Error & { code?: string }) => {
        assert.equal(err.code, "INVALID_REQUEST");
        return true;
      });
    }
    // The gRPC status a gRPC client of the API server sees.
    const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(), "GRPCInferenceService");
    const raw = new Ctor(api.ready.grpc!, grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => void> &
      grpc.Client;
    const md = new grpc.Metadata();
    md.set("x-capability-type", "bad");
    const status = await new Promise<number>((resolve) =>
      raw.ModelInfer!(
        encodeProtoRequest({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [Buffer.from("x")] }] }),
        md,
        (err: grpc.ServiceError | null) => resolve(err?.code ?? 0),
      ),
    );
    raw.close();
    assert.equal(status, grpc.status.INVALID_ARGUMENT);
  });

  test("a stream over gRPC: ModelStreamInfer through the API server, and SSE for REST callers", async () => {
    const chunks: unknown[] = [];
    for await (const c of grpcClient.stream({ type: "chat" }, { text: "s" })) chunks.push(c);
    assert.equal(chunks.length, 3);
    // One INT32 element reads back as a number; the chunks arrive in order.
    assert.deepEqual(
      chunks.map((c) => Number((c as { chunk: unknown }).chunk)),
      [0, 1, 2],
    );
    const sse = await restInfer("/infer/stream", { "x-capability-type": "chat" }, TEXT("sse"));
    assert.equal(sse.status, 200);
    const events = (await sse.text()).split("\n").filter((l) => l.startsWith("data: "));
    assert.equal(events.length, 3);
    assert.deepEqual((JSON.parse(events[2]!.slice(6)) as { outputs: { name: string; data: unknown[] }[] }).outputs[1], {
      name: "chunk",
      datatype: "INT32",
      shape: [1],
      data: [2],
    });
    // OIP REST has no streams: the one answer is the stream's one chunk.
    const one = await restInfer("/infer/stream", { "x-capability-type": "rest-echo" }, TEXT("once"));
    assert.equal((await one.text()).split("\n").filter((l) => l.startsWith("data: ")).length, 1);
  });

  test("a foreign stream to a client that stops reading: the foreign server is held back, the API server stays flat, and leaving cancels the call", async () => {
    const reg = await register({
      replica_id: "flood-grpc",
      endpoint: standIn.grpcAddress,
      capabilities: [{ type: "foreign-flood", model: "flood-model" }],
    });
    assert.equal(reg.status, 200, await reg.text());
    await probed("flood-grpc");
    const pid = api.child.pid!;
    const base = rssMb(pid);
    let peak = 0;
    const client = await pausedGrpcStream(api.ready.grpc!, { "x-capability-type": "foreign-flood" }, 200);
    try {
      // Held: the count of 64 KiB answers the server could write stops moving while nothing is read.
      let last = -1;
      const held = (await waitFor(
        "the foreign server to be held back",
        () => {
          peak = Math.max(peak, rssMb(pid) - base);
          const n = standIn.flood?.written ?? 0;
          const same = n > 0 && n === last;
          last = n;
          return same ? n : undefined;
        },
        15_000,
        300,
      )) as number;
      // Without back-pressure it writes all 5,000 (320 MB) into the API server at once.
      assert.ok(held < 400, `${held} answers of 64 KiB written for a client that reads none`);
      peak = Math.max(peak, rssMb(pid) - base);
      assert.ok(peak < 48, `the API server grew by ${peak.toFixed(1)} MB for one stalled stream`);
    } finally {
      client.destroy();
    }
    await waitFor("the API server to cancel the foreign call", () => standIn.flood?.cancelled === true, 10_000);
    await unregister("flood-grpc");
  });

  test("model metadata and readiness of a foreign model through the API server", async () => {
    const meta = (await (await fetch(`${api.ready.url}/v2/models/echo-model`)).json()) as { platform: string; inputs: unknown[] };
    assert.equal(meta.platform, "standin");
    assert.deepEqual(meta.inputs, [{ name: "text", datatype: "BYTES", shape: [-1] }]);
    assert.equal((await fetch(`${api.ready.url}/v2/models/echo-model/ready`)).status, 200);
  });

  test("a foreign replica registered at a dead address never takes traffic, and shows why", async () => {
    const port = await deadPort();
    assert.equal(
      (await register({ replica_id: "seed-dead", endpoint: `127.0.0.1:${port}`, capabilities: [{ type: "chat", model: "echo-model" }] }))
        .status,
      200,
    );
    for (let i = 0; i < 12; i++) {
      const out = await rest.inferRaw({ type: "chat" }, { text: `n${i}` });
      assert.equal((out.outputs[0]!.data as Buffer[])[0]!.toString(), `n${i}`);
    }
    const dead = await waitFor("seed-dead's 3 failed probes", async () => {
      const r = await row("seed-dead");
      return r !== undefined && r.failed_health_checks >= 3 ? r : undefined;
    });
    assert.equal(dead!.health, "unhealthy");
    assert.equal((await row("seed-grpc"))?.health, "healthy");
    await unregister("seed-dead");
  });

  test("a foreign replica that dies: its calls fail over to the live one, and it is marked unhealthy", async () => {
    const mortal = await startStandIn();
    hooks.after(() => mortal.close());
    assert.equal(
      (await register({ replica_id: "mortal", endpoint: mortal.grpcAddress, capabilities: [{ type: "chat", model: "echo-model" }] }))
        .status,
      200,
    );
    await probed("mortal");
    // Both take calls now; then one goes away.
    await waitFor("mortal took a call", async () => {
      await rest.inferRaw({ type: "chat" }, { text: "warm" });
      return mortal.seen.length > 0;
    });
    await mortal.close();
    for (let i = 0; i < 12; i++) {
      const out = await rest.inferRaw({ type: "chat" }, { text: `m${i}` });
      assert.equal((out.outputs[0]!.data as Buffer[])[0]!.toString(), `m${i}`);
    }
    await waitFor("mortal marked unhealthy", async () => (await row("mortal"))?.health === "unhealthy");
    await unregister("mortal");
  });

  test("a foreign server that says it is not ready leaves rotation, and comes back when it is", async () => {
    const second = await startStandIn();
    hooks.after(() => second.close());
    assert.equal(
      (
        await register({
          replica_id: "flaky",
          protocol: "oip-rest",
          http_endpoint: second.restUrl,
          capabilities: [{ type: "flaky", model: "echo-model" }],
        })
      ).status,
      200,
    );
    await probed("flaky");
    second.ready = false;
    await waitFor("flaky unhealthy", async () => (await row("flaky"))?.health === "unhealthy");
    const refused = await restInfer("/infer", { "x-capability-type": "flaky" }, TEXT("x"));
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { code: string }).code, "NO_READY_REPLICA");
    second.ready = true;
    await waitFor("flaky healthy again", async () => (await row("flaky"))?.health === "healthy");
    assert.equal((await restInfer("/infer", { "x-capability-type": "flaky" }, TEXT("back"))).status, 200);
  });

  test("a foreign registration must name its model and may not point at a link-local address", async () => {
    const noModel = await register({ replica_id: "nomodel", endpoint: standIn.grpcAddress, capabilities: [{ service: "kv" }] });
    assert.equal(noModel.status, 400);
    const e = (await noModel.json()) as { code: string; error: string };
    assert.equal(e.code, "INVALID_REGISTRATION");
    assert.match(e.error, /capabilities\[0\]: expected a 'model' \(or 'type'\) key naming the model the oip-grpc server serves/);
    const metadata = await register({ replica_id: "meta", endpoint: "169.254.169.254:80", capabilities: [{ type: "x" }] });
    assert.equal(metadata.status, 400);
    assert.equal(((await metadata.json()) as { code: string }).code, "URL_NOT_ALLOWED");
    const restWithout = await register({ replica_id: "r", protocol: "oip-rest", capabilities: [{ model: "m" }] });
    assert.equal(restWithout.status, 400);
    assert.match(
      ((await restWithout.json()) as { error: string }).error,
      /http_endpoint: expected the OIP REST server's http\(s\):\/\/host:port/,
    );
  });
});
