// Who may register, heartbeat and unregister which replica id, and how many (issue 25 #3), against
// an API server process without a token — the case the campaign attacked — and a replica process:
// a live id cannot be taken from another endpoint (409), another's heartbeats and unregister are
// refused (401), a registration in the seed's shape is issued a secret, and a flood of junk
// registrations is bounded in count, rate and memory.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Cleanups, FIXTURES, type Proc, startCli, startReplicaProc, waitFor } from "../helpers/processes.js";

const APP = `${path.join(FIXTURES, "test_app.ts")}:app`;
const BODY = JSON.stringify({ inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] });

function post(url: string, body: unknown, method = "POST"): Promise<Response> {
  return fetch(url, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

async function registry(api: string): Promise<{ total: number; replicas: { replica_id: string; http_endpoint: string | null }[] }> {
  return (await (await fetch(`${api}/registry`)).json()) as {
    total: number;
    replicas: { replica_id: string; http_endpoint: string | null }[];
  };
}

/** An HTTP server standing in for an attacker's endpoint: it counts every request and upgrade it gets. */
async function attackerEndpoint(cleanups: Cleanups): Promise<{ url: string; seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    res.end("{}");
  });
  server.on("upgrade", (req, socket) => {
    seen.push(req);
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.after(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) / 1024;
}

describe("a replica owns its id (API server without a token)", () => {
  const hooks = new Cleanups();
  let api: Proc;
  let victim: Proc;
  let attacker: { url: string; seen: IncomingMessage[] };

  before(async () => {
    api = await startCli(hooks, ["api-server", "--port", "0"]);
    victim = await startReplicaProc(hooks, api.ready.url!, APP, ["--replica-id", "victim"]);
    attacker = await attackerEndpoint(hooks);
    await waitFor("the replica registered", async () => (await registry(api.ready.url!)).total === 1);
  });
  after(() => hooks.run());

  test("re-registering a live id from another endpoint is 409 REPLICA_ID_TAKEN; its traffic stays with the replica", async () => {
    const hijack = { replica_id: "victim", endpoint: "127.0.0.1:1", http_endpoint: attacker.url, capabilities: [{ type: "whoami" }] };
    for (const body of [hijack, { ...hijack, replica_secret: "a-guessed-secret-of-enough-length" }]) {
      const res = await post(`${api.ready.url}/register`, body);
      assert.equal(res.status, 409);
      const err = (await res.json()) as { code: string; error: string };
      assert.equal(err.code, "REPLICA_ID_TAKEN");
      assert.match(err.error, /replica id 'victim' is registered by a live replica at http:\/\/127\.0\.0\.1:\d+/);
    }
    // The same endpoints without the secret are refused too: the gateway would show the replica a secret not its own.
    const same = await post(`${api.ready.url}/register`, { ...hijack, endpoint: victim.ready.grpc, http_endpoint: victim.ready.http });
    assert.equal(same.status, 409);
    assert.equal((await registry(api.ready.url!)).replicas[0]!.http_endpoint, victim.ready.http);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${api.ready.url}/infer`, {
        method: "POST",
        headers: { "x-capability-type": "whoami", "content-type": "application/json" },
        body: BODY,
      });
      assert.equal(res.status, 200);
      assert.match(await res.text(), /victim/);
    }
    assert.equal(attacker.seen.length, 0, "the attacker's endpoint got nothing");
  });

  test("another's heartbeat or unregister is 401: it can neither keep the entry alive nor remove it", async () => {
    for (const body of [{ replica_id: "victim" }, { replica_id: "victim", replica_secret: "a-guessed-secret-of-enough-length" }]) {
      for (const [method, route] of [
        ["POST", "/heartbeat"],
        ["DELETE", "/unregister"],
      ] as const) {
        const res = await post(`${api.ready.url}${route}`, body, method);
        assert.equal(res.status, 401, `${method} ${route} ${JSON.stringify(body)}`);
        assert.equal(((await res.json()) as { code: string }).code, "UNAUTHENTICATED");
        assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer realm="anyserve", scope="replica"/);
      }
    }
    assert.deepEqual(
      (await registry(api.ready.url!)).replicas.map((r) => r.replica_id),
      ["victim"],
    );
  });

  test("a registration in the seed's shape is issued a secret: heartbeats may come without it, unregister needs it", async () => {
    const seed = { replica_id: "seed-shape", endpoint: "127.0.0.1:2", capabilities: [{ type: "seed" }] };
    const res = await post(`${api.ready.url}/register`, seed);
    assert.equal(res.status, 200);
    const { replica_secret } = (await res.json()) as { replica_secret: string };
    assert.match(replica_secret, /^[\w-]{43}$/);
    assert.equal((await post(`${api.ready.url}/heartbeat`, { replica_id: "seed-shape" })).status, 200, "liveness without the secret");
    assert.equal((await post(`${api.ready.url}/register`, seed)).status, 200, "the same endpoints again, as the seed's replica does");
    assert.equal((await post(`${api.ready.url}/register`, { ...seed, endpoint: "127.0.0.1:3" })).status, 409, "not from elsewhere");
    assert.equal((await post(`${api.ready.url}/unregister`, { replica_id: "seed-shape" }, "DELETE")).status, 401);
    assert.equal((await post(`${api.ready.url}/unregister`, { replica_id: "seed-shape", replica_secret }, "DELETE")).status, 200);
  });

  test("the replica itself unregisters when it stops (its secret), and leaves at once", async () => {
    await victim.stop();
    await waitFor("the registry empty", async () => (await registry(api.ready.url!)).total === 0, 5_000);
  });
});

test("a flood of junk registrations is bounded: max_replicas (507), the rate of new ids (429), memory", async (t) => {
  const api = await startCli(t, ["api-server", "--port", "0", "--max-replicas", "50", "--registration-rate", "20"]);
  const pid = api.child.pid!;
  const before = rssMb(pid);
  const statuses = new Map<number, number>();
  let retryAfter = 0;
  const junk = (i: number) => ({
    replica_id: `junk-${i}`,
    endpoint: `127.0.0.1:${10_000 + (i % 50_000)}`,
    http_endpoint: `http://127.0.0.1:${10_000 + (i % 50_000)}`,
    heartbeat_interval_ms: 3_600_000, // none expires while the test runs, however slow the machine
    capabilities: Array.from({ length: 64 }, (_, k) => ({ type: `t${k}`, model: `m-${i}-${k}`.padEnd(100, "x") })),
  });
  const started = Date.now();
  for (let i = 0; i < 3_000; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async (_, k) => {
        const res = await post(`${api.ready.url}/register`, junk(i + k));
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 429 && res.headers.get("retry-after") === "1") retryAfter++;
        await res.arrayBuffer();
      }),
    );
  }
  const seconds = (Date.now() - started) / 1000;
  const accepted = statuses.get(200) ?? 0;
  // A burst of 20, then 20 a second, never past 50 in all.
  assert.ok(accepted >= 20 && accepted <= Math.min(50, 20 + Math.ceil(seconds * 20) + 1), `accepted ${accepted} in ${seconds} s`);
  assert.equal((statuses.get(429) ?? 0) + (statuses.get(507) ?? 0) + accepted, 3_000, JSON.stringify([...statuses]));
  assert.equal(retryAfter, statuses.get(429), "every 429 says when to come back");
  // Past the rate, new ids come back until the registry is full; then 507 REGISTRY_FULL.
  await waitFor(
    "the registry full",
    async () => {
      const res = await post(`${api.ready.url}/register`, junk(5_000 + Math.floor(Math.random() * 40_000)));
      const body = (await res.json()) as { code?: string; error?: string };
      return res.status === 507 && body.code === "REGISTRY_FULL" && /limit \(api_server\.max_replicas 50\)/.test(body.error ?? "");
    },
    10_000,
    60,
  );
  const listing = await (await fetch(`${api.ready.url}/registry`)).text();
  assert.equal((JSON.parse(listing) as { total: number }).total, 50);
  assert.ok(listing.length < 2_000_000, `/registry is ${listing.length} bytes`);
  const grown = rssMb(pid) - before;
  t.diagnostic(`3000 registrations in ${seconds.toFixed(1)} s: ${JSON.stringify([...statuses])}; RSS +${grown.toFixed(1)} MB`);
  // The refused bodies (~9 KB each, 27 MB in all) are garbage V8 collects once its old space
  // passes 64 MB (the server's --initial-old-space-size); keeping all 3000 entries would be ~3x their size.
  assert.ok(grown < 100, `the API server grew ${grown.toFixed(1)} MB`);
});
