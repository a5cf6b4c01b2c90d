// The direct path: the route table and its watch stream on the API server, and the SDK client
// calling replicas itself (docs/routing.md, "Direct path"), against an API server and replicas
// in this process on real sockets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../../src/sdk/client.js";
import { readSse } from "../../src/sdk/sse-reader.js";
import { waitFor } from "../helpers/processes.js";
import { aborts, apiServer, directClient, gatewayRequests, replica, runs, slowStarts, tableLists, totalRuns } from "./helpers.js";

const TOKEN = "direct-s3cret";

interface Table {
  version: number;
  replicas: { replica_id: string; available: boolean; health: string; http_endpoint: string; states: string[]; load_balancing: string }[];
}

test("GET /routes and /routes/watch: the table, a growing version, an event per change, the token", async (t) => {
  const s = await apiServer(t, { token: TOKEN });
  const auth = { authorization: `Bearer ${TOKEN}` };
  for (const path of ["/routes", "/routes/watch"]) {
    const refused = await fetch(`${s.url}${path}`);
    assert.equal(refused.status, 401, path);
    assert.equal(((await refused.json()) as { code: string }).code, "UNAUTHENTICATED");
  }
  const empty = (await (await fetch(`${s.url}/routes`, { headers: auth })).json()) as Table;
  assert.deepEqual(empty.replicas, []);

  const watch = new AbortController();
  t.after(() => watch.abort());
  const res = await fetch(`${s.url}/routes/watch`, { headers: auth, signal: watch.signal });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const events = readSse(res.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const next = async (): Promise<Table> => JSON.parse((await events.next()).value as string) as Table;
  assert.equal((await next()).version, empty.version);

  await replica(t, s.url, "r1", { token: TOKEN });
  let table = await next();
  assert.ok(table.version > empty.version);
  const r1 = table.replicas.find((r) => r.replica_id === "r1")!;
  assert.deepEqual([r1.available, r1.health, r1.load_balancing], [true, "healthy", "power_of_two"]);
  assert.match(r1.http_endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(r1.states, ["warm", "warm", "warm"]);

  // Draining (management API) is a change too; the version only grows.
  const drained = await fetch(`${s.url}/api/replicas/r1/drain`, { method: "POST", headers: auth });
  assert.equal(drained.status, 200);
  const before = table.version;
  table = await next();
  while (table.replicas.find((r) => r.replica_id === "r1")?.available !== false) table = await next();
  assert.ok(table.version > before);
  const now = (await (await fetch(`${s.url}/routes`, { headers: auth })).json()) as Table;
  assert.equal(now.version, table.version);
});

test("direct calls reach the replicas without passing through the gateway; streams too", async (t) => {
  const s = await apiServer(t);
  await Promise.all([replica(t, s.url, "d1"), replica(t, s.url, "d2")]);
  await waitFor("2 registered", () => s.registry.size === 2);
  const client = new Client({ apiServer: s.url, direct: true });
  t.after(() => client.close());
  // Before the table arrives, calls go through the gateway.
  assert.match(String(await client.infer({ type: "who" }, { x: 1 })), /^d[12]$/);
  await tableLists(client, ["d1", "d2"]);
  const gateway = await gatewayRequests(s.url);
  assert.ok(gateway >= 1);
  const runsBefore = totalRuns();
  const who = await Promise.all(Array.from({ length: 60 }, () => client.infer({ type: "who" }, { x: 1 })));
  assert.deepEqual(new Set(who), new Set(["d1", "d2"]), "both replicas are used");
  const tokens: unknown[] = [];
  for await (const tok of client.stream({ type: "tokens" }, { text: "a b c" })) tokens.push(tok);
  assert.equal(tokens.length, 3);
  assert.match(String(tokens[0]), /^d[12]:a$/);
  assert.equal(totalRuns() - runsBefore, 60, "every call ran once at a replica");
  assert.equal(await gatewayRequests(s.url), gateway, "none of them passed through the gateway");
  assert.equal(client.routes()!.connected, true);

  // close() ends the watch stream and the replica connections.
  const other = new Client({ apiServer: s.url, direct: true });
  await other.infer({ type: "who" }, { x: 1 });
  await tableLists(other, ["d1", "d2"]);
  await other.infer({ type: "who" }, { x: 1 });
  await other.close();
  assert.equal(other.routes()!.connected, false);
  await assert.rejects(other.infer({ type: "who" }, { x: 1 }));
});

test("a replica that joins is used once the table says so; one that leaves is not, and no call is lost or run twice", async (t) => {
  const s = await apiServer(t);
  await replica(t, s.url, "j1");
  const client = await directClient(t, s.url, ["j1"]);
  const j2 = await replica(t, s.url, "j2");
  await tableLists(client, ["j1", "j2"]);
  const gateway = await gatewayRequests(s.url);
  await waitFor("a call on j2", async () => (await client.infer({ type: "who" }, { x: 1 })) === "j2");
  assert.equal(await gatewayRequests(s.url), gateway);

  // j2 stops (unregister, GOAWAY, drain) while calls keep coming.
  const before = totalRuns();
  let ok = 0;
  let stopped = false;
  const load = (async () => {
    while (!stopped) {
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          await client.infer({ type: "who" }, { x: 1 });
          ok++;
        }),
      );
    }
  })();
  await waitFor("some load", () => ok > 50);
  await j2.stop();
  await tableLists(client, ["j1"]);
  const j1Before = runs.get("j1") ?? 0;
  await waitFor("calls after j2 left", () => (runs.get("j1") ?? 0) > j1Before + 50);
  stopped = true;
  await load;
  assert.equal(totalRuns() - before, ok, "every call ran exactly once and none failed");
  assert.equal(await client.infer({ type: "who" }, { x: 1 }), "j1");
});

test("no route: the call goes through the gateway and fails with the gateway's code", async (t) => {
  const s = await apiServer(t);
  await replica(t, s.url, "n1");
  const direct = await directClient(t, s.url, ["n1"]);
  const rest = new Client({ apiServer: s.url });
  t.after(() => rest.close());
  const gateway = await gatewayRequests(s.url);
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => ({ code: "OK", message: "" }),
      (e: { code: string; message: string }) => e,
    );
  const viaRest = await failure(rest.infer({ type: "unicorn" }, { x: 1 }));
  const viaDirect = await failure(direct.infer({ type: "unicorn" }, { x: 1 }));
  assert.equal(viaDirect.code, "NO_MATCHING_CAPABILITY");
  assert.deepEqual([viaDirect.code, viaDirect.message], [viaRest.code, viaRest.message]);
  assert.equal(await gatewayRequests(s.url), gateway + 2, "both went through the gateway");
  // Delegation headers are the gateway's business: such a call is not sent direct either, and the
  // gateway reads them only from a replica (issue 25 #6): from a client they change nothing.
  const g1 = await gatewayRequests(s.url);
  const delegated = await direct
    .infer({ type: "who" }, { x: 1 }, { headers: { "x-delegated-from": "n1", "x-delegation-depth": "1" } })
    .catch((e: { code: string }) => e.code);
  assert.equal(delegated, "n1");
  assert.equal(await gatewayRequests(s.url), g1 + 1, "it went through the gateway");
});

test("deadlines and aborts: DEADLINE_EXCEEDED at the timeout, CANCELLED on abort, the handler sees both", async (t) => {
  const s = await apiServer(t);
  await replica(t, s.url, "s1");
  const client = await directClient(t, s.url, ["s1"]);
  const gateway = await gatewayRequests(s.url);
  const abortsBefore = aborts.count;
  const started = Date.now();
  await assert.rejects(client.infer({ type: "slow" }, { ms: 5_000 }, { timeout: 200 }), { code: "DEADLINE_EXCEEDED" });
  const took = Date.now() - started;
  assert.ok(took >= 190 && took < 2_000, `took ${took} ms`);
  const ctl = new AbortController();
  const starts = slowStarts.count;
  const call = client.infer({ type: "slow" }, { ms: 5_000 }, { signal: ctl.signal });
  await waitFor("the call running in the handler", () => slowStarts.count > starts);
  ctl.abort();
  await assert.rejects(call, { code: "CANCELLED" });
  await waitFor("both aborts seen by the handler", () => aborts.count === abortsBefore + 2);
  assert.equal(await gatewayRequests(s.url), gateway);
});

test("token: without it the table is refused and calls go through the gateway; with it they go direct", async (t) => {
  const s = await apiServer(t, { token: TOKEN });
  await replica(t, s.url, "t1", { token: TOKEN });
  const without = new Client({ apiServer: s.url, direct: true });
  const withToken = new Client({ apiServer: s.url, direct: true, token: TOKEN });
  t.after(() => Promise.all([without.close(), withToken.close()]));
  assert.equal(await without.infer({ type: "who" }, { x: 1 }), "t1");
  await waitFor("the refusal", () => /UNAUTHENTICATED/.test(without.routes()!.lastError ?? ""));
  const g0 = await gatewayRequests(s.url, TOKEN);
  assert.equal(await without.infer({ type: "who" }, { x: 1 }), "t1");
  assert.equal(await gatewayRequests(s.url, TOKEN), g0 + 1);
  await withToken.infer({ type: "who" }, { x: 1 });
  await tableLists(withToken, ["t1"]);
  const g1 = await gatewayRequests(s.url, TOKEN);
  assert.equal(await withToken.infer({ type: "who" }, { x: 1 }), "t1");
  assert.equal(await gatewayRequests(s.url, TOKEN), g1, "direct: the frame endpoint took the peer key derived from the token");
});

test("Client options: direct needs apiServer over REST", () => {
  assert.throws(() => new Client({ endpoint: "http://127.0.0.1:1", direct: true }), TypeError);
  assert.throws(() => new Client({ apiServer: "127.0.0.1:1", protocol: "grpc", direct: true }), TypeError);
  assert.equal(new Client({ apiServer: "http://127.0.0.1:1" }).routes(), undefined);
});
