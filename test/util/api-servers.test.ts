// The failover policy between a deployment's API servers (util/api-servers.ts), over real HTTP
// servers on port 0: which failures move to the next API server (refused, reset before an answer,
// 503 REGISTRY_WARMING_UP / SHUTTING_DOWN) and which do not (404, a 502 the API server sent, a
// replica's QUEUE_FULL); when the failed request is sent again (never delivered, or replayable);
// stickiness, going round the list, one warning per switch, and the call's deadline.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { request } from "undici";
import { AnyServeError } from "../../src/errors.js";
import { ApiServers, failoverOf } from "../../src/util/api-servers.js";
import type { Logger } from "../../src/util/log.js";

type Mode = "ok" | "warming" | "shutting" | "queue-full" | "bad-gateway" | "not-found" | "reset" | "slow-reset";

/** An HTTP server whose answer is `mode`; counts the requests that reached it. */
async function fake(t: { after: (fn: () => unknown) => void }, mode: Mode) {
  const s = { mode, hits: 0, url: "", server: undefined as unknown as Server };
  s.server = createServer((req, res) => {
    s.hits++;
    req.resume();
    const send = (status: number, code: string) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: `fake ${code}`, code }));
    };
    switch (s.mode) {
      case "ok":
        return res.end(`ok from ${s.url}`);
      case "warming":
        return send(503, "REGISTRY_WARMING_UP");
      case "shutting":
        return send(503, "SHUTTING_DOWN");
      case "queue-full":
        return send(503, "QUEUE_FULL");
      case "bad-gateway":
        return send(502, "REPLICA_UNREACHABLE");
      case "not-found":
        return send(404, "NO_MATCHING_CAPABILITY");
      case "reset":
        return req.socket.resetAndDestroy();
      case "slow-reset":
        setTimeout(() => req.socket.resetAndDestroy(), 150);
    }
  });
  await new Promise<void>((r) => s.server.listen(0, "127.0.0.1", r));
  s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
  t.after(() => {
    s.server.closeAllConnections();
    s.server.close();
  });
  return s;
}

/** A URL nothing listens on (a port just freed). */
async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await new Promise<void>((r) => server.close(() => r()));
  return url;
}

/** GET `url`: the body on 200, else the API server's error (as the replica's callers raise it). */
async function get(url: string, ms: number): Promise<string> {
  const res = await request(url, { headersTimeout: ms, bodyTimeout: ms, reset: true });
  const text = await res.body.text();
  if (res.statusCode === 200) return text;
  const body = JSON.parse(text) as { code: "QUEUE_FULL"; error: string };
  throw new AnyServeError(body.code, body.error);
}

/** A reset before the answer, as undici reports it (the socket's own code, or its "other side closed"). */
const lostBeforeAnswer = (e: { code?: string }) => e.code === "ECONNRESET" || e.code === "UND_ERR_SOCKET";

function warnings() {
  const lines: { from: string; to: string; reason: string }[] = [];
  const warn = (o: object | string) => void lines.push(o as (typeof lines)[number]);
  return { lines, logger: { warn: warn as Logger["warn"] } };
}

test("failoverOf: connection-level failures and not-ready 503s move; answers about replicas do not", () => {
  const sys = (code: string) => Object.assign(new Error(code), { code });
  assert.deepEqual(failoverOf(sys("ECONNREFUSED")), { reason: "ECONNREFUSED", delivered: false });
  assert.deepEqual(failoverOf(sys("UND_ERR_CONNECT_TIMEOUT")), { reason: "UND_ERR_CONNECT_TIMEOUT", delivered: false });
  assert.deepEqual(failoverOf(sys("ECONNRESET")), { reason: "ECONNRESET", delivered: true });
  assert.deepEqual(failoverOf(sys("UND_ERR_SOCKET")), { reason: "UND_ERR_SOCKET", delivered: true });
  assert.deepEqual(failoverOf(new Error("wrapped", { cause: sys("ECONNREFUSED") })), { reason: "ECONNREFUSED", delivered: false });
  assert.deepEqual(failoverOf(new AnyServeError("REGISTRY_WARMING_UP", "warming")), { reason: "REGISTRY_WARMING_UP", delivered: false });
  assert.deepEqual(failoverOf(new AnyServeError("SHUTTING_DOWN", "stopping")), { reason: "SHUTTING_DOWN", delivered: false });
  // The SDK's REST transport: the connection to the API server failed (refused: never sent).
  const lost = new AnyServeError("REPLICA_UNREACHABLE", "cannot reach the server", { connectionLost: true });
  assert.deepEqual(failoverOf(lost), { reason: "REPLICA_UNREACHABLE", delivered: true });
  const refused = new AnyServeError("REPLICA_UNREACHABLE", "cannot reach", { connectionLost: true, connectFailed: true });
  assert.deepEqual(failoverOf(refused), { reason: "REPLICA_UNREACHABLE", delivered: false });
  // The API server answered: it is up. A 502 it sent is about a replica, as are QUEUE_FULL and 404s.
  assert.equal(failoverOf(new AnyServeError("REPLICA_UNREACHABLE", "the gateway could not reach replica r1")), undefined);
  assert.equal(failoverOf(new AnyServeError("QUEUE_FULL", "full")), undefined);
  assert.equal(failoverOf(new AnyServeError("NO_READY_REPLICA", "none ready")), undefined);
  assert.equal(failoverOf(new AnyServeError("NO_MATCHING_CAPABILITY", "nothing")), undefined);
  assert.equal(failoverOf(sys("UND_ERR_HEADERS_TIMEOUT")), undefined); // slow, not dead: the request is running there
  assert.equal(failoverOf(Object.assign(new Error("aborted"), { name: "AbortError" })), undefined);
});

test("refused: the request goes to the next API server, which stays current (one warning)", async (t) => {
  const dead = await refusedUrl();
  const b = await fake(t, "ok");
  const w = warnings();
  const servers = new ApiServers([dead, b.url], w);
  // Not replayable, but never delivered: sent again.
  assert.equal(await servers.call(get, { timeoutMs: 5_000, replayable: false }), `ok from ${b.url}`);
  assert.equal(servers.current, b.url);
  assert.equal(await servers.call(get, { timeoutMs: 5_000, replayable: false }), `ok from ${b.url}`);
  assert.equal(b.hits, 2);
  assert.deepEqual(w.lines, [{ from: dead, to: b.url, reason: "ECONNREFUSED" }]);
});

test("calls failing together move one step and log one warning", async (t) => {
  const dead = await refusedUrl();
  const b = await fake(t, "ok");
  const c = await fake(t, "ok");
  const w = warnings();
  const servers = new ApiServers([dead, b.url, c.url], w);
  const answers = await Promise.all(Array.from({ length: 8 }, () => servers.call(get, { timeoutMs: 5_000, replayable: true })));
  assert.deepEqual(new Set(answers), new Set([`ok from ${b.url}`]));
  assert.equal(c.hits, 0);
  assert.equal(w.lines.length, 1);
});

test("reset before an answer: replayed only when replayable; later calls move either way", async (t) => {
  const a = await fake(t, "reset");
  const b = await fake(t, "ok");
  const servers = new ApiServers([a.url, b.url]);
  await assert.rejects(servers.call(get, { timeoutMs: 5_000, replayable: false }), lostBeforeAnswer);
  assert.equal(b.hits, 0, "a request that may have been delivered is not sent again");
  assert.equal(servers.current, b.url, "but the API server that reset it is left");
  const again = new ApiServers([a.url, b.url]);
  assert.equal(await again.call(get, { timeoutMs: 5_000, replayable: true }), `ok from ${b.url}`);
  assert.equal(a.hits, 2);
});

test("503 REGISTRY_WARMING_UP and SHUTTING_DOWN move (and retry); sticky; round the list when the next fails too", async (t) => {
  const a = await fake(t, "warming");
  const b = await fake(t, "ok");
  const servers = new ApiServers([a.url, b.url]);
  assert.equal(await servers.call(get, { timeoutMs: 5_000, replayable: false }), `ok from ${b.url}`);
  a.mode = "ok";
  assert.equal(await servers.call(get, { timeoutMs: 5_000, replayable: false }), `ok from ${b.url}`, "sticky: stays on b");
  b.mode = "shutting";
  assert.equal(await servers.call(get, { timeoutMs: 5_000, replayable: false }), `ok from ${a.url}`, "round the list to a");
  assert.equal(servers.current, a.url);
});

test("answers about replicas (404, 502 from the API server, QUEUE_FULL) do not move", async (t) => {
  for (const mode of ["not-found", "bad-gateway", "queue-full"] as const) {
    const a = await fake(t, mode);
    const b = await fake(t, "ok");
    const servers = new ApiServers([a.url, b.url]);
    await assert.rejects(servers.call(get, { timeoutMs: 5_000, replayable: true }), AnyServeError);
    assert.equal(servers.current, a.url, mode);
    assert.equal(b.hits, 0, mode);
  }
});

test("each API server at most once per call; the error of the last is thrown", async (t) => {
  const a = await fake(t, "warming");
  const b = await fake(t, "shutting");
  const servers = new ApiServers([a.url, b.url]);
  await assert.rejects(servers.call(get, { timeoutMs: 5_000, replayable: true }), (e: AnyServeError) => e.code === "SHUTTING_DOWN");
  assert.deepEqual([a.hits, b.hits], [1, 1]);
  assert.equal(servers.current, a.url, "moved on from b: round to a for the next call");
});

test("the deadline: no attempt after it, and each attempt gets only the time left", async (t) => {
  const a = await fake(t, "slow-reset"); // resets after 150 ms
  const b = await fake(t, "ok");
  const servers = new ApiServers([a.url, b.url]);
  const given: number[] = [];
  const attempt = (url: string, ms: number) => {
    given.push(ms);
    return get(url, 10_000);
  };
  await assert.rejects(servers.call(attempt, { timeoutMs: 100, replayable: true }), lostBeforeAnswer);
  assert.equal(b.hits, 0, "the failure came after the deadline: not sent again");
  assert.equal(servers.current, b.url);
  a.mode = "reset";
  const again = new ApiServers([a.url, b.url]);
  given.length = 0;
  assert.equal(await again.call(attempt, { timeoutMs: 2_000, replayable: true }), `ok from ${b.url}`);
  assert.equal(given.length, 2);
  assert.ok(given[0]! <= 2_000 && given[1]! <= given[0]!, `time left shrinks: ${given}`);
});

test("one URL: the attempt's error as it is, nothing else tried; no URL is refused", async () => {
  const dead = await refusedUrl();
  const servers = new ApiServers(dead);
  await assert.rejects(servers.call(get, { timeoutMs: 1_000, replayable: true }), (e: { code?: string }) => e.code === "ECONNREFUSED");
  assert.equal(servers.current, dead);
  assert.throws(() => new ApiServers([]), /at least one URL/);
});

test("update: a re-resolved list keeps the current API server when it is still there, else starts at the first", () => {
  const servers = new ApiServers(["http://api-headless:8080"]);
  servers.update(["http://10.1.0.5:8080", "http://10.1.0.6:8080"]);
  assert.equal(servers.current, "http://10.1.0.5:8080");
  assert.equal(servers.moveFrom("http://10.1.0.5:8080", "ECONNREFUSED"), true);
  // Resolved again in another order, with a pod replaced: still on .6.
  servers.update(["http://10.1.0.7:8080", "http://10.1.0.6:8080"]);
  assert.equal(servers.current, "http://10.1.0.6:8080");
  servers.update(["http://10.1.0.8:8080", "http://10.1.0.9:8080"]);
  assert.equal(servers.current, "http://10.1.0.8:8080");
  assert.throws(() => servers.update([]), /at least one URL/);
});
