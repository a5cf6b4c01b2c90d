// Seed router behaviours over HTTP ("Router (HTTP)"), plus the control-plane token, against an
// API server and replicas running in this process on real sockets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startApiServer } from "../src/gateway/api-server.js";
import { startReplica } from "../src/replica/replica.js";
import { AnyServe } from "../src/sdk/app.js";
import { Client } from "../src/sdk/client.js";
import { silentLogger } from "../src/util/logger.js";
import { waitFor } from "./helpers/processes.js";

async function api(t: { after(fn: () => unknown): void }, opts: Parameters<typeof startApiServer>[0] = {}) {
  const server = await startApiServer({ port: 0, logger: silentLogger, ...opts });
  t.after(() => server.close());
  return server;
}

const json = (method: string, body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

test("GET /health → 200 {status: healthy}", async (t) => {
  const s = await api(t);
  const res = await fetch(`${s.url}/health`);
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { status: string }).status, "healthy");
});

test("register → success with the id in the message; gpus: 2 accepted; registry lists it", async (t) => {
  const s = await api(t);
  const listed = (await (await fetch(`${s.url}/registry`)).json()) as { replicas: unknown[]; total: number };
  assert.deepEqual([listed.replicas, listed.total], [[], 0]);
  const res = await fetch(
    `${s.url}/register`,
    json("POST", { replica_id: "replica-x", endpoint: "localhost:50051", capabilities: [{ type: "chat", gpus: 2 }] }),
  );
  assert.equal(res.status, 200);
  const body = (await res.json()) as { success: boolean; message: string };
  assert.equal(body.success, true);
  assert.match(body.message, /replica-x/);
  await fetch(
    `${s.url}/register`,
    json("POST", { replica_id: "replica-y", endpoint: "localhost:50052", capabilities: [{ type: "embed" }] }),
  );
  const reg = (await (await fetch(`${s.url}/registry`)).json()) as { total: number; replicas: Record<string, unknown>[] };
  assert.equal(reg.total, 2);
  const x = reg.replicas.find((r) => r.replica_id === "replica-x")!;
  assert.deepEqual(x.capabilities, [{ type: "chat", gpus: "2" }]);
  for (const field of ["replica_id", "endpoint", "capabilities", "registered_at", "last_heartbeat"]) assert.ok(field in x, field);
});

test("register with missing or bad fields → 400 naming the field", async (t) => {
  const s = await api(t);
  const cases: [unknown, RegExp][] = [
    [{ endpoint: "localhost:1", capabilities: [] }, /replica_id/],
    [{ replica_id: "a", capabilities: [] }, /endpoint/],
    [{ replica_id: "a", endpoint: "localhost:1" }, /capabilities/],
    [{ replica_id: "a", endpoint: "localhost:1", capabilities: [{ type: { nested: 1 } }] }, /capabilities\[0\]\.type/],
    [{ replica_id: "a", endpoint: "localhost:1", capabilities: [{ "": "x" }] }, /capabilities\[0\]/],
    [{ replica_id: "a", endpoint: "localhost:1", capabilities: [], http_endpoint: "file:///etc/passwd" }, /http_endpoint/],
    [{ replica_id: "a", endpoint: "localhost:1", capabilities: [], http_endpoint: "http://169.254.169.254" }, /link-local/],
    [[1, 2], /JSON object/],
  ];
  for (const [body, field] of cases) {
    const res = await fetch(`${s.url}/register`, json("POST", body));
    assert.ok(res.status === 400, `status ${res.status} for ${JSON.stringify(body)}`);
    const err = (await res.json()) as { error: string; code: string };
    assert.match(err.error, field);
  }
});

test("unregister → success; unknown → 404 REPLICA_NOT_FOUND every time", async (t) => {
  const s = await api(t);
  const reg = await fetch(
    `${s.url}/register`,
    json("POST", { replica_id: "gone", endpoint: "localhost:1", capabilities: [{ type: "a" }] }),
  );
  // A registration without a secret of its own is issued one: unregistering needs it.
  const { replica_secret } = (await reg.json()) as { replica_secret: string };
  assert.equal((await fetch(`${s.url}/unregister`, json("DELETE", { replica_id: "gone" }))).status, 401);
  const ok = await fetch(`${s.url}/unregister`, json("DELETE", { replica_id: "gone", replica_secret }));
  assert.equal(ok.status, 200);
  for (let i = 0; i < 2; i++) {
    const again = await fetch(`${s.url}/unregister`, json("DELETE", { replica_id: "gone" }));
    assert.equal(again.status, 404);
    assert.equal(((await again.json()) as { code: string }).code, "REPLICA_NOT_FOUND");
  }
});

test("POST /infer/json with no capability headers → 400; unknown capability on an empty registry → 404", async (t) => {
  const s = await api(t);
  const body = { inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] };
  const none = await fetch(`${s.url}/infer/json`, json("POST", body));
  assert.equal(none.status, 400);
  const unknown = await fetch(`${s.url}/infer`, json("POST", body, { "x-capability-type": "nothing" }));
  assert.equal(unknown.status, 404);
  assert.match(((await unknown.json()) as { error: string }).error, /nothing is registered/);
});

test("X-Delegated-From from a replica (x-anyserve-replica: id secret) routes to another replica; past the depth → 508", async (t) => {
  const s = await api(t);
  const replicas = await Promise.all(
    ["one", "two"].map(async (id) => {
      const app = new AnyServe();
      app.capability({ type: "who" }, (_r, ctx) => ctx.replicaId);
      const r = await startReplica({ app, replicaId: id, apiServer: s.url, logger: silentLogger, heartbeatIntervalMs: 1000 });
      t.after(() => r.stop());
      return r;
    }),
  );
  assert.equal(replicas.length, 2);
  await waitFor("registered", () => s.registry.size === 2);
  const client = new Client({ apiServer: s.url });
  t.after(() => client.close());
  // The replica "one" sends it: its id and the secret it registered with.
  const asOne = { "x-anyserve-replica": `one ${s.registry.get("one")!.secret}` };
  for (let i = 0; i < 10; i++) {
    assert.equal(
      await client.infer({ type: "who" }, { x: 1 }, { headers: { ...asOne, "x-delegated-from": "one", "x-delegation-depth": "1" } }),
      "two",
    );
  }
  await assert.rejects(
    client.infer({ type: "who" }, { x: 1 }, { headers: { ...asOne, "x-delegated-from": "one,two", "x-delegation-depth": "1" } }),
    (err: { code: string; message: string }) => err.code === "DELEGATION_EXHAUSTED" && /one, two/.test(err.message),
  );
  await assert.rejects(
    client.infer({ type: "who" }, { x: 1 }, { headers: { ...asOne, "x-delegated-from": "one", "x-delegation-depth": "2" } }),
    { code: "DELEGATION_EXHAUSTED" },
  );
});

test("with a token: control routes need it (401 without or wrong), replicas register and serve with it", async (t) => {
  const s = await api(t, { token: "s3cret" });
  const body = { replica_id: "r", endpoint: "localhost:1", capabilities: [{ type: "a" }] };
  assert.equal((await fetch(`${s.url}/register`, json("POST", body))).status, 401);
  assert.equal((await fetch(`${s.url}/register`, json("POST", body, { authorization: "Bearer wrong!" }))).status, 401);
  assert.equal((await fetch(`${s.url}/register`, json("POST", body, { authorization: "Bearer s3cret" }))).status, 200);
  assert.equal((await fetch(`${s.url}/unregister`, json("DELETE", { replica_id: "r" }))).status, 401);
  const app = new AnyServe();
  app.capability({ type: "secure" }, () => "ok");
  const replica = await startReplica({ app, apiServer: s.url, token: "s3cret", logger: silentLogger });
  t.after(() => replica.stop());
  await waitFor("registered", () => s.registry.lookup({ type: "secure" }).length === 1);
  const client = new Client({ apiServer: s.url });
  t.after(() => client.close());
  assert.equal(await client.infer({ type: "secure" }, { x: 1 }), "ok");
});

test("a replica refuses frame connections without its token (the gateway cannot be impersonated)", async (t) => {
  const app = new AnyServe();
  app.capability({ type: "secure" }, () => "ok");
  const replica = await startReplica({ app, token: "s3cret", logger: silentLogger });
  t.after(() => replica.stop());
  const s = await api(t); // no token: its frame connection is refused
  await fetch(
    `${s.url}/register`,
    json("POST", { replica_id: "r", endpoint: replica.grpcAddress, http_endpoint: replica.httpUrl, capabilities: [{ type: "secure" }] }),
  );
  const client = new Client({ apiServer: s.url });
  t.after(() => client.close());
  await assert.rejects(
    client.infer({ type: "secure" }, { x: 1 }),
    (err: { code: string }) => err.code !== undefined && err.code !== "WORKER_ERROR",
  );
});
