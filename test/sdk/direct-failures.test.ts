// The direct path when things go wrong — a replica killed, the API server restarted — and
// ctx.call taking the direct path from inside a handler.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { startApiServer } from "../../src/gateway/api-server.js";
import { AnyServe } from "../../src/sdk/app.js";
import { Client } from "../../src/sdk/client.js";
import { silentLogger } from "../../src/util/logger.js";
import { FIXTURES, startReplicaProc, waitFor } from "../helpers/processes.js";
import { apiServer, directClient, gatewayRequests, replica, runs, tableLists } from "./helpers.js";

test("SIGKILL: the call in flight fails (it may have run), later calls go to the replica left, each once", async (t) => {
  const s = await apiServer(t);
  const app = new AnyServe();
  app.capability({ type: "whoami" }, (_req, ctx) => {
    runs.set(ctx.replicaId, (runs.get(ctx.replicaId) ?? 0) + 1);
    return ctx.replicaId;
  });
  await replica(t, s.url, "k1", { app });
  const k2 = await startReplicaProc(t, s.url, path.join(FIXTURES, "test_app.ts:app"), ["--replica-id", "k2"]);
  const client = await directClient(t, s.url, ["k1", "k2"], { type: "whoami" });
  await waitFor("a call on k2", async () => (await client.infer({ type: "whoami" }, { x: 1 })) === "k2");

  const gateway = await gatewayRequests(s.url);
  const slow = client.infer({ type: "slow" }, { ms: 30_000 }).catch((e: { code: string }) => e.code); // only k2 has it
  await waitFor(
    "the slow call running on k2",
    async () => ((await (await fetch(`${k2.ready.http}/health`)).json()) as { in_flight: number }).in_flight === 1,
  );
  k2.child.kill("SIGKILL");
  assert.equal(await slow, "REPLICA_UNREACHABLE", "a call that may have run is not sent again (failover off)");
  assert.equal(await gatewayRequests(s.url), gateway, "nor through the gateway");

  const before = runs.get("k1") ?? 0;
  const answers = await Promise.all(Array.from({ length: 40 }, () => client.infer({ type: "whoami" }, { x: 1 })));
  assert.deepEqual(new Set(answers), new Set(["k1"]));
  assert.equal((runs.get("k1") ?? 0) - before, 40, "each call ran exactly once");
  await tableLists(client, ["k1"]); // k2 missed its heartbeats
});

test("API server restart: direct calls go on while it is down; the client resyncs with the new one", async (t) => {
  const first = await startApiServer({ port: 0, logger: silentLogger, heartbeatIntervalMs: 200 });
  let firstOpen = true;
  t.after(() => firstOpen && first.close());
  const port = Number(new URL(first.url).port);
  await replica(t, first.url, "a1");
  const client = await directClient(t, first.url, ["a1"]);

  await first.close();
  firstOpen = false;
  await waitFor("the watch stream lost", () => client.routes()!.connected === false);
  const before = runs.get("a1") ?? 0;
  for (let i = 0; i < 20; i++) assert.equal(await client.infer({ type: "who" }, { x: 1 }), "a1");
  assert.equal((runs.get("a1") ?? 0) - before, 20);

  const second = await apiServer(t, { port });
  await waitFor("a1 registered again", () => second.registry.size === 1); // its heartbeat got 404
  await replica(t, second.url, "a2");
  await tableLists(client, ["a1", "a2"], 15_000);
  assert.equal(client.routes()!.connected, true);
  const gateway = await gatewayRequests(second.url);
  await waitFor("a call on a2", async () => (await client.infer({ type: "who" }, { x: 1 })) === "a2");
  assert.equal(await gatewayRequests(second.url), gateway);
});

test("ctx.call takes the direct path (with the API server's token), and through the gateway when turned off", async (t) => {
  const token = "ctx-s3cret";
  const s = await apiServer(t, { token });
  const callerApp = new AnyServe();
  callerApp.capability({ type: "chat" }, async (_req, ctx) => `via ${String(await ctx.call({ type: "who" }, { x: 1 }))}`);
  callerApp.capability({ type: "relay" }, async function* (req, ctx) {
    for await (const tok of ctx.callStream({ type: "tokens" }, { text: req.value("text") })) yield `relayed ${String(tok)}`;
  });
  await Promise.all([replica(t, s.url, "caller", { app: callerApp, token }), replica(t, s.url, "callee", { token })]);
  await waitFor("2 registered", () => s.registry.size === 2);
  const client = new Client({ apiServer: s.url });
  t.after(() => client.close());

  // The caller's first calls may go through the gateway until its table arrives; then only the
  // outer call does.
  await waitFor("a ctx.call that skipped the gateway", async () => {
    const g = await gatewayRequests(s.url, token);
    assert.equal(await client.infer({ type: "chat" }, { x: 1 }), "via callee");
    return (await gatewayRequests(s.url, token)) === g + 1;
  });
  const g = await gatewayRequests(s.url, token);
  const got: unknown[] = [];
  for await (const tok of client.stream({ type: "relay" }, { text: "x y" })) got.push(tok);
  assert.deepEqual(got, ["relayed callee:x", "relayed callee:y"]);
  assert.equal(await gatewayRequests(s.url, token), g + 1);

  // ANYSERVE_DIRECT_CALLS=0: every ctx.call goes through the API server.
  process.env.ANYSERVE_DIRECT_CALLS = "0";
  try {
    await replica(t, s.url, "caller-rest", { app: callerApp, token });
  } finally {
    delete process.env.ANYSERVE_DIRECT_CALLS;
  }
  await waitFor("3 registered", () => s.registry.size === 3);
  const direct = await directClient(t, s.url, ["caller", "callee", "caller-rest"], { type: "who" }, { token });
  // The outer call goes direct, so every gateway request is a ctx.call.
  const before = await gatewayRequests(s.url, token);
  let viaRestCaller = 0;
  for (let i = 0; i < 30 && viaRestCaller < 3; i++) {
    const g0 = await gatewayRequests(s.url, token);
    await direct.infer({ type: "chat" }, { x: 1 });
    const through = (await gatewayRequests(s.url, token)) - g0;
    assert.ok(through <= 1);
    viaRestCaller += through;
  }
  assert.equal(viaRestCaller, 3, "caller-rest's ctx.calls went through the gateway");
  assert.ok((await gatewayRequests(s.url, token)) - before === 3);
});

test("a replica that answers QUEUE_FULL did not run the call: it is tried on another replica, once", async (t) => {
  const s = await apiServer(t);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const busyApp = new AnyServe();
  busyApp.capability({ type: "who" }, async (_req, ctx) => {
    runs.set(ctx.replicaId, (runs.get(ctx.replicaId) ?? 0) + 1);
    await gate;
    return ctx.replicaId;
  });
  // One request at a time and no queue: while one runs, the next is answered 503 QUEUE_FULL.
  const busy = await replica(t, s.url, "busy", { app: busyApp, config: { app: "busy", performance: { queue_size: 0 } } });
  await replica(t, s.url, "fine");
  const toBusy = new Client({ endpoint: busy.httpUrl });
  t.after(() => toBusy.close());
  await waitFor("2 registered", () => s.registry.size === 2);
  const held = toBusy.infer({ type: "who" }, { x: 1 });
  t.after(() => release());
  await waitFor("busy running one call", () => runs.get("busy") === 1);
  const direct = await directClient(t, s.url, ["busy", "fine"], { type: "slow", ms: 1 }); // only fine has `slow`
  const fine = runs.get("fine") ?? 0;
  const answers = await Promise.all(Array.from({ length: 30 }, () => direct.infer({ type: "who" }, { x: 1 })));
  assert.deepEqual(new Set(answers), new Set(["fine"]));
  assert.equal((runs.get("fine") ?? 0) - fine, 30);
  assert.equal(runs.get("busy"), 1, "busy ran only the call it held");
  const metrics = await (await fetch(`${busy.httpUrl}/metrics`)).text();
  assert.match(metrics, /anyserve_replica_requests_total\{[^}]*code="QUEUE_FULL"[^}]*\} [1-9]/, "some calls were answered QUEUE_FULL");
  release();
  assert.equal(await held, "busy");
});
