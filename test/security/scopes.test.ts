// Auth where it matters (issue 24 #13, and the WWW-Authenticate of issue 25 #13): an API server
// process with a control-plane token, a read token and an inference token, and a replica process
// with the control and inference tokens. The registry, the route table, the status API and the
// metrics need the read scope; control routes the control token (the read token is 403); the
// inference and model routes the inference token — REST (node:http and the fast ingress) and gRPC,
// on the API server and on the replica; health stays open. Every 401 carries a Bearer challenge.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/protocol/grpc-service.js";
import { Client } from "../../src/sdk/client.js";
import { Cleanups, FIXTURES, type Proc, startCli, startReplicaProc, waitFor } from "../helpers/processes.js";

const APP = `${path.join(FIXTURES, "test_app.ts")}:app`;
const CONTROL = "control-token-for-the-scopes-test";
const READ = "read-token-for-the-scopes-test";
const INFER = "inference-token-for-the-scopes-test";
const BODY = JSON.stringify({ inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] });

const bearer = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

async function get(url: string, token?: string): Promise<{ status: string; challenge: string | null; code?: string }> {
  const res = await fetch(url, { headers: bearer(token) });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { status: String(res.status), challenge: res.headers.get("www-authenticate"), ...(code ? { code } : {}) };
}

function infer(url: string, token?: string, route = "/infer"): Promise<Response> {
  return fetch(`${url}${route}`, {
    method: "POST",
    headers: { "x-capability-type": "whoami", "content-type": "application/json", ...bearer(token) },
    body: BODY,
  });
}

describe("scopes: read, control and inference tokens (API server and replica processes)", () => {
  const hooks = new Cleanups();
  let api: Proc;
  let fast: Proc;
  let replica: Proc;
  let callerThread: Proc;
  let callerProcess: Proc;

  before(async () => {
    const tokens = ["--token", CONTROL, "--read-token", READ, "--inference-token", INFER];
    [api, fast] = await Promise.all([
      startCli(hooks, ["api-server", "--port", "0", "--grpc-port", "0", ...tokens]),
      startCli(hooks, ["api-server", "--port", "0", "--fast-ingress", ...tokens]),
    ]);
    replica = await startReplicaProc(hooks, api.ready.url!, APP, [
      "--replica-id",
      "scoped",
      "--token",
      CONTROL,
      "--inference-token",
      INFER,
    ]);
    // A handler on a worker thread calling another capability (ctx.call, ctx.callStream): its
    // calls must carry the inference token as the replica's own do.
    const tokenArgs = ["--token", CONTROL, "--inference-token", INFER];
    await startReplicaProc(hooks, api.ready.url!, `${path.join(FIXTURES, "callee_app.ts")}:app`, ["--replica-id", "callee", ...tokenArgs]);
    callerThread = await startReplicaProc(hooks, api.ready.url!, `${path.join(FIXTURES, "caller_app.ts")}:app`, [
      "--replica-id",
      "caller-thread",
      "--threading-strategy",
      "multi",
      "--thread-count",
      "1",
      ...tokenArgs,
    ]);
    // The same in a worker process, which holds no token: its ctx.call goes through the replica (CALL).
    callerProcess = await startReplicaProc(hooks, api.ready.url!, `${path.join(FIXTURES, "caller_app.ts")}:app`, [
      "--replica-id",
      "caller-process",
      "--threading-strategy",
      "process",
      "--thread-count",
      "1",
      ...tokenArgs,
    ]);
    await waitFor(
      "the replicas in the registry",
      async () => ((await (await fetch(`${api.ready.url}/registry`, { headers: bearer(READ) })).json()) as { total: number }).total === 4,
    );
  });
  after(() => hooks.run());

  test("health, server metadata and the dashboard page stay open", async () => {
    for (const p of ["/health", "/v2", "/v2/health/live", "/v2/health/ready", "/dashboard"]) {
      assert.equal((await get(`${api.ready.url}${p}`)).status, "200", p);
    }
    for (const p of ["/health", "/v2/health/live", "/v2/health/ready"])
      assert.equal((await get(`${replica.ready.http}${p}`)).status, "200", p);
  });

  test("read routes: 401 with a Bearer challenge without a token or with a wrong one; the read or control token reads", async () => {
    const routes = ["/registry", "/route?type=whoami", "/routes", "/api/services", "/api/replicas", "/api/nodes", "/api/stats", "/metrics"];
    for (const p of routes) {
      const url = `${api.ready.url}${p}`;
      assert.deepEqual(await get(url), { status: "401", challenge: 'Bearer realm="anyserve", scope="read"', code: "UNAUTHENTICATED" }, p);
      assert.deepEqual(
        await get(url, "wrong"),
        { status: "401", challenge: 'Bearer realm="anyserve", scope="read", error="invalid_token"', code: "UNAUTHENTICATED" },
        p,
      );
      assert.equal((await get(url, INFER)).status, "401", `${p}: the inference token does not read`);
      assert.equal((await get(url, READ)).status, "200", `${p} with the read token`);
      assert.equal((await get(url, CONTROL)).status, "200", `${p} with the control token`);
    }
  });

  test("control routes: 401 with a challenge without the control token, 403 with the read token", async () => {
    const calls: [string, string, unknown][] = [
      ["POST", "/register", { replica_id: "x", endpoint: "127.0.0.1:1", capabilities: [{ type: "x" }] }],
      ["POST", "/heartbeat", { replica_id: "scoped" }],
      ["DELETE", "/unregister", { replica_id: "scoped" }],
      ["POST", "/api/replicas/scoped/drain", {}],
      ["POST", "/api/services/anything/workers", { action: "stop" }],
    ];
    for (const [method, p, body] of calls) {
      const send = (token?: string) =>
        fetch(`${api.ready.url}${p}`, {
          method,
          headers: { "content-type": "application/json", ...bearer(token) },
          body: JSON.stringify(body),
        });
      const none = await send();
      assert.equal(none.status, 401, `${method} ${p}`);
      assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="anyserve", scope="control"', `${method} ${p}`);
      const read = await send(READ);
      assert.equal(read.status, 403, `${method} ${p} with the read token`);
      assert.equal(((await read.json()) as { code: string }).code, "PERMISSION_DENIED");
    }
    const registry = (await (await fetch(`${api.ready.url}/registry`, { headers: bearer(READ) })).json()) as {
      replicas: { replica_id: string; available: boolean }[];
    };
    assert.deepEqual(
      registry.replicas.map((r) => [r.replica_id, r.available]).sort(),
      [
        ["callee", true],
        ["caller-process", true],
        ["caller-thread", true],
        ["scoped", true],
      ],
      "nothing was changed",
    );
  });

  test("inference: REST on the API server (node:http and fast ingress) and on the replica needs the inference token", async () => {
    for (const url of [api.ready.url!, replica.ready.http!]) {
      const none = await infer(url);
      assert.equal(none.status, 401, url);
      assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="anyserve", scope="inference"');
      assert.equal((await infer(url, CONTROL)).status, 401, `${url}: the control token is not an inference token`);
      assert.equal((await infer(url, INFER)).status, 200, url);
      assert.equal((await get(`${url}/v2/models/anything`)).status, "401", `${url}: model metadata`);
      assert.equal((await get(`${url}/v2/models/anything/ready`)).status, "401", `${url}: model readiness`);
    }
    // The fast ingress answers the hot routes itself: the same check, the same challenge.
    const none = await infer(fast.ready.url!);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="anyserve", scope="inference"');
    assert.equal((await infer(fast.ready.url!, READ, "/v2/models/m/infer")).status, 401);
  });

  test("inference over gRPC: UNAUTHENTICATED without the token, served with it; health RPCs stay open", async () => {
    for (const address of [api.ready.grpc!, replica.ready.grpc!]) {
      const without = new Client({ apiServer: address, protocol: "grpc", timeout: 5_000 });
      const withToken = new Client({ apiServer: address, protocol: "grpc", inferenceToken: INFER });
      try {
        await assert.rejects(without.infer({ type: "whoami" }, { x: 1 }), { code: "UNAUTHENTICATED" }, address);
        assert.equal(await withToken.infer({ type: "whoami" }, { x: 1 }), "scoped", address);
        assert.equal(await without.isAlive(), true, `${address}: ServerLive is open`);
      } finally {
        await Promise.all([without.close(), withToken.close()]);
      }
      // ModelMetadata without the token: UNAUTHENTICATED too.
      const raw = new (grpc.makeGenericClientConstructor(serviceDefinition(), "GRPCInferenceService"))(
        address,
        grpc.credentials.createInsecure(),
      ) as unknown as grpc.Client & Record<string, (req: unknown, cb: (err: grpc.ServiceError | null) => void) => void>;
      const status = await new Promise<number | undefined>((resolve) =>
        raw.ModelMetadata!({ name: "whoami", version: "" }, (err) => resolve(err?.code)),
      );
      raw.close();
      assert.equal(status, grpc.status.UNAUTHENTICATED, `${address}: ModelMetadata`);
    }
  });

  /** `chat` called on `client` (straight to one replica, so its handler answers) embeds through `callee` with ctx.call. */
  async function assertChatCalls(client: Client, id: string): Promise<void> {
    const chat = (await client.infer({ type: "chat" }, { text: "hello there" })) as { embedded_by: string; caller: string };
    assert.deepEqual([chat.caller, chat.embedded_by], [id, "callee"]);
  }

  test("a handler on a worker thread calls other capabilities with the inference token (ctx.call and ctx.callStream)", async () => {
    const client = new Client({ endpoint: callerThread.ready.http!, inferenceToken: INFER });
    try {
      await assertChatCalls(client, "caller-thread");
      const relayed: string[] = [];
      for await (const tok of client.stream({ type: "relay_stream" }, { text: "a b" })) relayed.push(String(tok));
      assert.deepEqual(relayed, ["relayed:a", "relayed:b"]);
    } finally {
      await client.close();
    }
  });

  test("a handler in a worker process (no token of its own) calls through its replica, with the replica's inference token", async () => {
    const client = new Client({ endpoint: callerProcess.ready.http!, inferenceToken: INFER });
    try {
      await assertChatCalls(client, "caller-process");
    } finally {
      await client.close();
    }
  });

  test("the SDK client sends the inference token over REST", async () => {
    const client = new Client({ apiServer: api.ready.url!, inferenceToken: INFER });
    try {
      assert.equal(await client.infer({ type: "whoami" }, { x: 1 }), "scoped");
    } finally {
      await client.close();
    }
  });
});
