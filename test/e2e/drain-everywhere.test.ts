// Draining is a state the replica carries (issue 27: "management actions reach the controller
// wherever they arrive"): two API servers, replicas registered with both, all real processes.
// A drain sent to one API server takes the replica out of rotation there at once and at the
// other within a heartbeat interval; undrain through the other brings it back at both. A replica
// that cannot be reached is 502 REPLICA_UNREACHABLE with nothing changed; a replica restarted
// comes back undrained; `start --drained` starts out of rotation everywhere.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { burst, countBy } from "../helpers/load.js";
import { FIXTURES, startCli, waitFor } from "../helpers/processes.js";

const TOKEN = "drain-everywhere-control-token";
const AUTH = { authorization: `Bearer ${TOKEN}` };
/** The replicas' heartbeat interval (s): the bound on how late the other API server follows. */
const HEARTBEAT_S = 2;
const APP = path.join(FIXTURES, "resilience_app.ts:app");

type Replica = { replica_id: string; available: boolean };

async function registry(url: string): Promise<Map<string, Replica>> {
  const body = (await (await fetch(`${url}/registry`, { headers: AUTH })).json()) as { replicas: Replica[] };
  return new Map(body.replicas.map((r) => [r.replica_id, r]));
}

/** Which replicas answered 20 `who` requests sent to `url`. */
async function answeredBy(url: string): Promise<Record<string, number>> {
  return countBy(await burst(url, 20, 4, { "x-capability-type": "who" }), (a) => String(a.value));
}

function manage(url: string, id: string, action: "drain" | "undrain", headers: Record<string, string> = AUTH): Promise<Response> {
  return fetch(`${url}/api/replicas/${id}/${action}`, { method: "POST", headers });
}

function replica(t: Parameters<typeof startCli>[0], apis: string[], id: string, extra: string[] = []) {
  return startCli(
    t,
    [
      "start",
      "--app",
      APP,
      "--port",
      "0",
      "--api-server",
      apis.join(","),
      "--replica-id",
      id,
      "--service",
      "m",
      "--health-check-interval",
      String(HEARTBEAT_S),
      ...extra,
    ],
    { ANYSERVE_TOKEN: TOKEN },
  );
}

test("drain on one API server reaches every API server; undrain on the other brings it back; unreachable replica changes nothing", async (t) => {
  const servers = await Promise.all(
    [1, 2].map(() => startCli(t, ["api-server", "--port", "0", "--load-balancing", "round_robin", "--token", TOKEN])),
  );
  const [a, b] = servers.map((s) => s.ready.url!) as [string, string];
  const procs = await Promise.all(["m-0", "m-1"].map((id) => replica(t, [a, b], id)));
  for (const url of [a, b]) await waitFor(`2 replicas at ${url}`, async () => (await registry(url)).size === 2, 30_000);
  assert.deepEqual(await answeredBy(b), { "m-0": 10, "m-1": 10 });

  // The management API still needs the control-plane token (the replica's own route likewise).
  assert.equal((await manage(a, "m-0", "drain", {})).status, 401);
  const direct = (await registry(a)).get("m-0") as Replica & { http_endpoint: string };
  assert.equal((await fetch(`${direct.http_endpoint}/drain`, { method: "POST" })).status, 401, "the replica's /drain is guarded");
  assert.equal((await registry(b)).get("m-0")!.available, true, "a refused drain changes nothing");

  // Drain through A: in force at A when the answer comes, at B within a heartbeat interval.
  const drained = await manage(a, "m-0", "drain");
  assert.equal(drained.status, 200, await drained.clone().text());
  const answer = (await drained.json()) as { draining: boolean; available: boolean; scope: string };
  const at = Date.now();
  assert.deepEqual([answer.draining, answer.available, answer.scope], [true, false, "every API server"]);
  assert.equal((await registry(a)).get("m-0")!.available, false);
  assert.deepEqual(await answeredBy(a), { "m-1": 20 });
  await waitFor(
    "B to take m-0 out of rotation",
    async () => (await registry(b)).get("m-0")!.available === false,
    HEARTBEAT_S * 1000 + 1000,
  );
  assert.ok(Date.now() - at <= HEARTBEAT_S * 1000 + 1000);
  assert.deepEqual(await answeredBy(b), { "m-1": 20 });
  const view = (await (await fetch(`${b}/api/services/m`, { headers: AUTH })).json()) as {
    replicas: { replica_id: string; health: string }[];
  };
  assert.equal(view.replicas.find((r) => r.replica_id === "m-0")!.health, "draining");
  // It stays drained there across heartbeats: B's registry follows the replica, not its own memory.
  await new Promise((r) => setTimeout(r, HEARTBEAT_S * 1000 + 200));
  assert.equal((await registry(b)).get("m-0")!.available, false);

  // Undrain through B: symmetric.
  const undrained = await manage(b, "m-0", "undrain");
  assert.equal(undrained.status, 200, await undrained.clone().text());
  assert.equal((await registry(b)).get("m-0")!.available, true);
  await waitFor("A to put m-0 back", async () => (await registry(a)).get("m-0")!.available === true, HEARTBEAT_S * 1000 + 1000);
  assert.deepEqual(await answeredBy(a), { "m-0": 10, "m-1": 10 });

  // A replica that cannot be reached: 502 REPLICA_UNREACHABLE, and neither registry changes.
  await procs[1]!.stop("SIGKILL");
  const lost = await manage(a, "m-1", "drain");
  assert.equal(lost.status, 502);
  const err = (await lost.json()) as { code: string; error?: string; message?: string };
  assert.equal(err.code, "REPLICA_UNREACHABLE");
  assert.match(JSON.stringify(err), /replica 'm-1' at http:\/\/127\.0\.0\.1:\d+ could not be reached to drain it/);
  for (const url of [a, b]) assert.equal((await registry(url)).get("m-1")?.available, true, `${url} unchanged`);

  // An unknown id is still 404.
  const missing = await manage(a, "zz", "drain");
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { code: string }).code, "REPLICA_NOT_FOUND");
});

test("a drained replica restarted comes back undrained; one started --drained is out of rotation at every API server", async (t) => {
  const servers = await Promise.all([1, 2].map(() => startCli(t, ["api-server", "--port", "0", "--token", TOKEN])));
  const [a, b] = servers.map((s) => s.ready.url!) as [string, string];
  const first = await replica(t, [a, b], "r-0");
  for (const url of [a, b]) await waitFor(`r-0 at ${url}`, async () => (await registry(url)).has("r-0"), 30_000);
  assert.equal((await manage(a, "r-0", "drain")).status, 200);
  await waitFor("r-0 drained at B", async () => (await registry(b)).get("r-0")?.available === false, HEARTBEAT_S * 1000 + 1000);
  await first.stop();
  await replica(t, [a, b], "r-0");
  for (const url of [a, b]) {
    await waitFor(`r-0 back and available at ${url}`, async () => (await registry(url)).get("r-0")?.available === true, 30_000);
  }

  await replica(t, [a, b], "r-1", ["--drained"]);
  for (const url of [a, b]) await waitFor(`r-1 at ${url}`, async () => (await registry(url)).has("r-1"), 30_000);
  for (const url of [a, b]) assert.equal((await registry(url)).get("r-1")!.available, false, `r-1 drained at ${url}`);
  assert.equal((await manage(b, "r-1", "undrain")).status, 200);
  await waitFor("r-1 undrained at A", async () => (await registry(a)).get("r-1")?.available === true, HEARTBEAT_S * 1000 + 1000);
});
