// The replica's registration loop against a small real HTTP server standing in for the API
// server's control routes (/register, /heartbeat, /unregister): it records every request and
// answers as the test says — 404 to a heartbeat when it "forgot" the replica, or not at all while
// the test holds its answers. Real timers with short heartbeat intervals; waits poll with deadlines.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { type RegistrationBody, RegistrationLoop } from "../../src/replica/registration.js";
import { silentLogger } from "../../src/util/logger.js";
import { waitFor } from "../helpers/processes.js";

interface Seen {
  method: string;
  path: string;
  body: Record<string, unknown>;
  authorization: string | undefined;
  at: number;
}

/** The API server's control routes, as far as the loop uses them. */
class ControlServer {
  readonly seen: Seen[] = [];
  /** Replica ids the "registry" holds: a heartbeat for another id is 404, as the real one answers. */
  readonly known = new Set<string>();
  /** While set, answers wait for it (a slow API server: requests in flight); `holding` limits it to one path. */
  held: Promise<void> | undefined;
  holding: string | undefined;
  /** Arrivals and answers in order: "→ /heartbeat", "← /heartbeat 200", … */
  readonly log: string[] = [];
  server: http.Server | undefined;
  port = 0;

  async start(port = 0): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>) : {};
        this.seen.push({ method: req.method ?? "", path: req.url ?? "", body, authorization: req.headers.authorization, at: Date.now() });
        this.log.push(`→ ${req.url}`);
        if (this.holding === undefined || this.holding === req.url) await this.held;
        const id = String(body.replica_id);
        let status = 200;
        if (req.url === "/register") this.known.add(id);
        else if (req.url === "/heartbeat") status = this.known.has(id) ? 200 : 404;
        else if (req.url === "/unregister") status = this.known.delete(id) ? 200 : 404;
        this.log.push(`← ${req.url} ${status}`);
        res.writeHead(status, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** "POST /register", "POST /heartbeat", … in order, from request `from` on. */
  calls(from = 0): string[] {
    return this.seen.slice(from).map((s) => `${s.method} ${s.path}`);
  }
}

async function control(t: TestContext): Promise<ControlServer> {
  const c = new ControlServer();
  await c.start();
  t.after(() => c.stop());
  return c;
}

function loop(t: TestContext, apiServer: string, body: RegistrationBody, token?: string): RegistrationLoop {
  const l = new RegistrationLoop({ apiServer: `${apiServer}/`, body: () => body, logger: silentLogger, token });
  t.after(() => l.stop());
  return l;
}

function bodyOf(replicaId: string, heartbeatMs: number): RegistrationBody {
  return {
    replica_id: replicaId,
    replica_secret: `secret-of-${replicaId}-0123456789abcdef`,
    endpoint: "127.0.0.1:7000",
    http_endpoint: "http://127.0.0.1:7000",
    capabilities: [{ type: "chat" }, { type: "embed" }],
    states: ["warm", "cold"],
    heartbeat_interval_ms: heartbeatMs,
    service: "svc",
  };
}

const heartbeats = (c: ControlServer) => c.seen.filter((s) => s.path === "/heartbeat");

test("registers at start with its body and token, then heartbeats every interval", async (t) => {
  const c = await control(t);
  const body = bodyOf("r1", 40);
  const l = loop(t, c.url, body, "secret");
  await l.start();
  assert.equal(l.registered, true);
  assert.deepEqual(c.calls(), ["POST /register"], "one registration, before start() resolves");
  assert.deepEqual(c.seen[0]!.body, { ...body });
  assert.equal(c.seen[0]!.authorization, "Bearer secret");
  await waitFor("four heartbeats", () => heartbeats(c).length >= 4, 5_000, 5);
  assert.deepEqual(c.calls().slice(0, 5), ["POST /register", ...Array(4).fill("POST /heartbeat")]);
  assert.ok(
    heartbeats(c).every((h) => h.body.replica_id === "r1" && h.authorization === "Bearer secret"),
    "heartbeats name the replica and carry the token",
  );
  const times = c.seen.slice(0, 5).map((s) => s.at);
  const gaps = times.slice(1).map((at, i) => at - times[i]!);
  // Timers never fire early (Node rounds to the millisecond): each gap is at least the interval.
  assert.ok(
    gaps.every((g) => g >= 39),
    `gaps ${gaps.join(", ")} ms with a 40 ms interval`,
  );
});

test("a heartbeat answered 404 (the registry forgot the replica) registers it again at once", async (t) => {
  const c = await control(t);
  const l = loop(t, c.url, bodyOf("r1", 30));
  await l.start();
  await waitFor("a heartbeat", () => heartbeats(c).length >= 1, 5_000, 5);
  const from = c.seen.length;
  c.known.delete("r1"); // as after the registry expired it
  await waitFor("registered again", () => c.calls(from).includes("POST /register"), 5_000, 5);
  assert.deepEqual(c.calls(from).slice(0, 2), ["POST /heartbeat", "POST /register"], "the 404 heartbeat, then the registration");
  assert.ok(c.known.has("r1"));
  await waitFor("heartbeats again", () => c.calls(from).slice(2).includes("POST /heartbeat"), 5_000, 5);
  assert.equal(l.registered, true);
});

test("the API server restarting (down, then up on the same port with an empty registry): registered again when it is back", async (t) => {
  const c = await control(t);
  const l = loop(t, c.url, bodyOf("r1", 30));
  await l.start();
  await waitFor("a heartbeat", () => heartbeats(c).length >= 1, 5_000, 5);
  await c.stop();
  await waitFor("the loop noticed", () => !l.registered, 5_000, 5);
  const fresh = new ControlServer();
  await fresh.start(c.port);
  t.after(() => fresh.stop());
  await waitFor("registered with the new API server", () => fresh.known.has("r1"), 5_000, 5);
  assert.equal(fresh.calls()[0], "POST /register", "the first request to the new server is a registration");
  await waitFor("heartbeats to it", () => heartbeats(fresh).length >= 1, 5_000, 5);
  assert.equal(l.registered, true);
});

test("refresh() sends the registration again at once with the new states; one arriving mid-request is sent after it", async (t) => {
  const c = await control(t);
  const body = bodyOf("r1", 60_000); // no heartbeat within the test: every request seen is the loop's doing
  const l = loop(t, c.url, body);
  await l.start();
  body.states = ["warm", "warm"];
  await l.refresh();
  assert.deepEqual(c.calls(), ["POST /register", "POST /register"]);
  assert.deepEqual(c.seen[1]!.body.states, ["warm", "warm"]);
  // A refresh while the registration is in flight: the API server holds its answer.
  let answer!: () => void;
  c.held = new Promise((resolve) => {
    answer = resolve;
  });
  body.states = ["failed", "warm"];
  const first = l.refresh();
  await waitFor("the registration in flight", () => c.seen.length === 3, 5_000, 5);
  body.states = ["failed", "cold"];
  await l.refresh(); // returns at once: it is queued behind the one in flight
  assert.equal(c.seen.length, 3);
  answer();
  await first;
  await waitFor("the queued registration", () => c.seen.length === 4, 5_000, 5);
  assert.deepEqual(
    c.seen.slice(2).map((s) => [s.path, s.body.states]),
    [
      ["/register", ["failed", "warm"]],
      ["/register", ["failed", "cold"]],
    ],
  );
});

test("stop() waits for the heartbeat in flight, does not register again when it comes back 404, unregisters, and sends nothing after", async (t) => {
  const c = await control(t);
  const l = loop(t, c.url, bodyOf("r1", 20));
  await l.start();
  let answer!: () => void;
  c.held = new Promise((resolve) => {
    answer = resolve;
  });
  c.holding = "/heartbeat";
  await waitFor("a heartbeat in flight", () => heartbeats(c).length === 1, 5_000, 2);
  c.known.delete("r1"); // its answer will be 404: a loop that was not stopped would register again
  const stopping = l.stop();
  // A request sent after stop(): once it has arrived, an unregister sent without waiting would have too.
  await fetch(`${c.url}/witness`, { method: "POST", body: "{}" });
  answer();
  await stopping;
  assert.equal(l.registered, false);
  assert.deepEqual(
    c.log.filter((e) => !e.includes("witness")).slice(-4),
    ["→ /heartbeat", "← /heartbeat 404", "→ /unregister", "← /unregister 404"],
    "the unregister only after the heartbeat's answer, and no registration between",
  );
  assert.deepEqual(
    c.seen.at(-1)!.body,
    { replica_id: "r1", replica_secret: "secret-of-r1-0123456789abcdef" },
    "its secret proves the id is its own",
  );
  assert.equal(c.known.has("r1"), false);
  const after = c.seen.length;
  // A witness loop with the same interval, started after the stop: by its third heartbeat the
  // stopped loop's timer would have fired as often.
  const w = loop(t, c.url, bodyOf("w1", 20));
  await w.start();
  await waitFor("three witness heartbeats", () => heartbeats(c).filter((h) => h.body.replica_id === "w1").length >= 3, 5_000, 2);
  assert.deepEqual(
    c.seen.slice(after).filter((s) => s.body.replica_id === "r1"),
    [],
    "nothing from the stopped loop",
  );
});

test("an unreachable API server at start: not registered, retried every interval until it answers", async (t) => {
  const c = new ControlServer();
  await c.start();
  const port = c.port;
  await c.stop(); // the port is free now: nobody listens
  const l = loop(t, `http://127.0.0.1:${port}`, bodyOf("r1", 30));
  await l.start();
  assert.equal(l.registered, false);
  await c.start(port);
  t.after(() => c.stop());
  await waitFor("registered once the API server is up", () => l.registered, 5_000, 5);
  assert.equal(c.calls()[0], "POST /register");
});
