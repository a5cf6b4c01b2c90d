// The fast ingress's HTTP/1.1 conformance, on raw sockets, against a stub backend behind it and the
// REST front end on node:http for everything it hands over or relays: parsing and smuggling,
// limits, Expect, HTTP/1.0, timeouts, pipelining order, cancellation, and the way to node:http.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { AnyServeError } from "../../src/errors.js";
import type { IncomingCall, InferBackend } from "../../src/protocol/call.js";
import { FastIngress } from "../../src/frontend/fast-ingress/ingress.js";
import { RestFrontend } from "../../src/frontend/rest.js";
import { closeServer, listen } from "../../src/util/http.js";
import { silentLogger } from "../../src/util/logger.js";
import { waitFor } from "../helpers/processes.js";
import { req, Wire } from "../helpers/http-wire.js";

const LIMIT = 4096;
const JSON_CT = "Content-Type: application/json";

/**
 * Answers `{query, body}`; `X-Capability-Gate: name` holds the call until the test opens that gate
 * (so a test decides which call finishes first, without timing); `type=hang` waits for the abort.
 */
class StubBackend implements InferBackend {
  readonly calls: IncomingCall[] = [];
  /** Calls the backend has answered (or failed), in the order they finished. */
  readonly finished: IncomingCall[] = [];
  aborted = 0;
  readonly #gates = new Map<string, { opened: Promise<void>; open: () => void }>();

  /** Lets every call held by gate `name` (now or later) go on. */
  open(name: string): void {
    this.#gate(name).open();
  }

  #gate(name: string): { opened: Promise<void>; open: () => void } {
    let gate = this.#gates.get(name);
    if (gate === undefined) {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      gate = { opened, open };
      this.#gates.set(name, gate);
    }
    return gate;
  }

  async infer(call: IncomingCall) {
    this.calls.push(call);
    try {
      return await this.#answer(call);
    } finally {
      this.finished.push(call);
    }
  }

  async #answer(call: IncomingCall) {
    if (call.query.type === "hang") {
      await new Promise<void>((resolve) => call.signal.addEventListener("abort", () => resolve(), { once: true }));
      this.aborted++;
      throw new AnyServeError("CANCELLED", "the client left");
    }
    if (call.query.gate !== undefined) await this.#gate(call.query.gate).opened;
    if (call.query.type === "full") throw new AnyServeError("QUEUE_FULL", "queue full");
    // A backend bug: an answer without a body.
    if (call.query.type === "broken") return { contentType: "application/json" } as unknown as { contentType: string; body: Buffer };
    if (call.query.size !== undefined)
      return { contentType: "application/octet-stream", body: Buffer.alloc(Number(call.query.size), call.query.n ?? "x") };
    return { contentType: "application/json", body: Buffer.from(JSON.stringify({ query: call.query, body: call.body.toString() })) };
  }
  async stream(_call: IncomingCall, onChunk: (c: { contentType: string; body: Buffer }) => void) {
    for (const w of ["one", "two", "three"]) {
      onChunk({ contentType: "application/json", body: Buffer.from(JSON.stringify({ w })) });
      await nextTurn(); // each chunk in a write of its own
    }
  }
  modelMetadata(): never {
    throw new AnyServeError("MODEL_NOT_FOUND", "no such model");
  }
  async modelReady() {
    return false;
  }
  ready() {
    return true;
  }
}

const backend = new StubBackend();
/** The `n` of the calls tagged `X-Capability-Tag: tag`, among `calls` (the backend's calls or finished calls). */
const ns = (calls: IncomingCall[], tag: string): string[] => calls.filter((c) => c.query.tag === tag).map((c) => c.query.n ?? "");
/** Paths of the requests node:http has answered (its own, handed-over and relayed ones), in order. */
const nodeAnswered: string[] = [];
let ingress: FastIngress;
let port: number;
let nodePort: number;

/** A fast ingress in front of the stub, and the REST front end on node:http (listening on loopback) behind it. */
async function startPair(): Promise<{ ingress: FastIngress; port: number; nodePort: number; close(graceMs?: number): Promise<void> }> {
  const rest = new RestFrontend({
    backend,
    logger: silentLogger,
    serverName: "t",
    version: "0",
    maxBodyBytes: LIMIT,
    defaultTimeoutMs: 5_000,
    maxTimeoutMs: 5_000,
  });
  const http = createServer({ maxHeaderSize: 16 * 1024 }, rest.listener);
  http.on("request", (rq, rs) => rs.once("finish", () => nodeAnswered.push(rq.url ?? "")));
  const nodePort = await listen(http, 0, "127.0.0.1");
  const ingress = new FastIngress({
    backend,
    httpServer: http,
    maxBodyBytes: LIMIT,
    defaultTimeoutMs: 5_000,
    maxTimeoutMs: 5_000,
    headersTimeoutMs: 300,
    requestTimeoutMs: 600,
    keepAliveTimeoutMs: 400,
    maxHeaders: 50,
    maxPipelined: 8,
  });
  const port = await ingress.listen(0, "127.0.0.1");
  return {
    ingress,
    port,
    nodePort,
    close: async (graceMs = 1_000) => void (await Promise.all([ingress.close(graceMs), closeServer(http, graceMs)])),
  };
}

let pair: Awaited<ReturnType<typeof startPair>>;
before(async () => {
  pair = await startPair();
  ({ ingress, port, nodePort } = pair);
});
after(() => pair.close());

async function one(bytes: string | Buffer): Promise<{ status: number; headers: Record<string, string>; body: string; closed: boolean }> {
  const w = await Wire.open(port);
  w.write(bytes);
  const [a] = await w.next(1);
  // An answer that says close must be followed by the close; one that does not is not waited on.
  const closed = a!.headers.connection === "close" ? await w.closesWithin(2_000) : w.isClosed;
  w.destroy();
  return { ...a!, closed };
}

/**
 * Whether the ingress reads the connection now: the libuv handle's `reading` flag, which the
 * ingress's read gate (as node:http) sets when it stops and starts reading.
 */
function serverReading(w: Wire): boolean | undefined {
  return (w.serverEnd() as unknown as { _handle?: { reading?: boolean } } | undefined)?._handle?.reading;
}

const echo = (body: string, more: string[] = []) => req("POST", "/infer", ["X-Capability-Type: echo", JSON_CT, ...more], body);

describe("hot routes", () => {
  test("POST /infer: the call is built from the headers; the answer has node:http's headers", async () => {
    const a = await one(
      echo('{"a":1}', ["X-Request-Id: rid-1", "X-Anyserve-Timeout-Ms: 1234", "X-Anyserve-Affinity: k", "X-Delegated-From: r1, r2"]),
    );
    assert.equal(a.status, 200);
    assert.deepEqual(JSON.parse(a.body), { query: { type: "echo" }, body: '{"a":1}' });
    assert.equal(a.headers["content-type"], "application/json");
    assert.equal(a.headers["x-request-id"], "rid-1");
    assert.equal(a.headers.connection, "keep-alive");
    assert.match(a.headers["keep-alive"]!, /^timeout=\d+$/);
    assert.ok(a.headers.date);
    const call = backend.calls.at(-1)!;
    // Delegation headers count only from a replica of the deployment (docs/security.md): not from this client.
    assert.deepEqual([call.timeoutMs, call.affinityKey, call.tried, call.depth, call.format], [1234, "k", undefined, undefined, "json"]);
  });

  test("POST /v2/models/{m}/versions/{v}/infer: the model is the query", async () => {
    const a = await one(req("POST", "/v2/models/m%20x/versions/2/infer", [JSON_CT], "{}"));
    assert.equal(a.status, 200);
    assert.deepEqual(JSON.parse(a.body).query, { model: "m x", version: "2" });
  });

  test("header errors answer the REST front end's JSON error; the connection stays usable", async () => {
    const w = await Wire.open(port);
    w.write(req("POST", "/infer", [JSON_CT], "{}"));
    w.write(req("POST", "/infer", ["X-Capability-Type: echo", "Content-Type: text/plain"], "{}"));
    w.write(req("POST", "/v2/models/a%00b/infer", [JSON_CT], "{}"));
    w.write(echo("{}"));
    const [missing, media, name, ok] = await w.next(4);
    assert.deepEqual([missing!.status, JSON.parse(missing!.body).code], [400, "MISSING_CAPABILITY"]);
    assert.deepEqual([media!.status, JSON.parse(media!.body).code], [415, "UNSUPPORTED_MEDIA_TYPE"]);
    assert.deepEqual([name!.status, JSON.parse(name!.body).code], [400, "INVALID_CAPABILITY"]);
    assert.equal(ok!.status, 200);
    w.destroy();
  });

  test("a backend error: its status and code, Retry-After on 503", async () => {
    const a = await one(req("POST", "/infer", ["X-Capability-Type: full", JSON_CT], "{}"));
    assert.deepEqual([a.status, JSON.parse(a.body).code, a.headers["retry-after"]], [503, "QUEUE_FULL", "1"]);
  });

  test("a broken answer from the backend (no body) is a 500 on both ports, and both keep serving", async () => {
    for (const p of [port, nodePort]) {
      const w = await Wire.open(p);
      w.write(
        req("POST", "/infer", ["X-Capability-Type: broken", JSON_CT], "{}") +
          req("POST", "/infer", ["X-Capability-Type: echo", JSON_CT], "{}"),
      );
      const [bad, good] = await w.next(2);
      w.destroy();
      assert.deepEqual([bad!.status, JSON.parse(bad!.body).code], [500, "INTERNAL"], `port ${p === port ? "fast" : "node:http"}`);
      assert.equal(good!.status, 200);
    }
  });

  test("pipelined requests are answered in request order, whichever the backend finishes first", async () => {
    const w = await Wire.open(port);
    // 0 and 2 are held: the backend finishes 1 and 3, then 2, then 0.
    const gates = ["pipe-0", undefined, "pipe-2", undefined];
    w.write(
      gates
        .map((g, i) =>
          req("POST", "/infer", ["X-Capability-Tag: pipe", `X-Capability-N: ${i}`, ...(g ? [`X-Capability-Gate: ${g}`] : [])], "{}"),
        )
        .join(""),
    );
    await waitFor("1 and 3 finished", () => ns(backend.finished, "pipe").sort().join() === "1,3");
    backend.open("pipe-2");
    await waitFor("2 finished", () => ns(backend.finished, "pipe").length === 3);
    assert.equal(w.answers.length, 0, "nothing is answered before the first request");
    backend.open("pipe-0");
    const answers = await w.next(4);
    assert.deepEqual(
      answers.map((a) => JSON.parse(a.body).query.n),
      ["0", "1", "2", "3"],
    );
    assert.equal(ns(backend.finished, "pipe").at(-1), "0", "the first request finished last");
    w.destroy();
  });

  test("backpressure: reading pauses at maxPipelined unanswered requests and resumes as their answers go out", async () => {
    const w = await Wire.open(port);
    const batch = (i: number) =>
      Array.from({ length: 8 }, (_, j) =>
        req("POST", "/infer", ["X-Capability-Tag: bp", `X-Capability-N: ${i * 8 + j}`, `X-Capability-Gate: bp-${i}`], "{}"),
      ).join("");
    w.write(batch(0));
    for (let i = 0; i < 5; i++) {
      // Batch i fills the pipeline (8 = maxPipelined, all held): reading has stopped, so batch
      // i + 1, written now, stays in the socket until batch i's answers go out.
      await waitFor(`batch ${i} at the backend`, () => ns(backend.calls, "bp").length === (i + 1) * 8);
      assert.equal(serverReading(w), false, `reading stopped at the pipeline limit (batch ${i})`);
      if (i < 4) w.write(batch(i + 1));
      backend.open(`bp-${i}`);
    }
    assert.deepEqual(
      (await w.next(40)).map((a) => JSON.parse(a.body).query.n),
      Array.from({ length: 40 }, (_, i) => String(i)),
    );
    w.destroy();
  });

  test("answers the client does not read yet are not an idle connection: it is not closed under them", async () => {
    const big = await Wire.open(port);
    big.socket.pause();
    big.write(
      Array.from({ length: 6 }, (_, i) =>
        req("POST", "/infer", ["X-Capability-Tag: big", "X-Capability-Size: 1000000", `X-Capability-N: ${i}`], "{}"),
      ).join(""),
    );
    await waitFor("the six answers made", () => ns(backend.finished, "big").length === 6);
    // A witness connection, idle from after that, is closed by the keep-alive timeout (400 ms):
    // once it is, the big one has gone unread for longer than the keep-alive timeout too.
    const witness = await Wire.open(port);
    witness.write(echo("{}"));
    await witness.next(1);
    assert.equal(await witness.closesWithin(3_000), true, "the idle witness is closed");
    big.socket.resume();
    const answers = await big.next(6, 10_000);
    assert.deepEqual(
      answers.map((a) => [a.body.length, a.body[0]]),
      Array.from({ length: 6 }, (_, i) => [1_000_000, String(i)]),
    );
    big.destroy();
  });

  test("chunked request body, headers split over several writes", async () => {
    const w = await Wire.open(port);
    // Each piece reaches the server in a read of its own.
    await w.writeApart("POST /infer HTTP/1.1\r\nHost: t\r\nX-Capa");
    await w.writeApart("bility-Type: echo\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    w.write("4;ext=1\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n");
    const [a] = await w.next(1);
    assert.equal(JSON.parse(a!.body).body, "abcdefg");
    w.destroy();
  });
});

describe("limits and smuggling", () => {
  test("a declared body over the limit → 413 PAYLOAD_TOO_LARGE and close, before the body is read", async () => {
    const a = await one(`POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nContent-Length: ${LIMIT + 1}\r\n\r\n`);
    assert.deepEqual([a.status, JSON.parse(a.body).code, a.headers.connection, a.closed], [413, "PAYLOAD_TOO_LARGE", "close", true]);
  });

  test("a chunked body crossing the limit → 413 and close", async () => {
    const chunk = `800\r\n${"a".repeat(0x800)}\r\n`;
    const a = await one(
      `POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}${chunk}${chunk}`,
    );
    assert.deepEqual([a.status, JSON.parse(a.body).code, a.closed], [413, "PAYLOAD_TOO_LARGE", true]);
  });

  test("headers over 16 KiB → 431 HEADERS_TOO_LARGE with the catalogue's body; more than maxHeaders lines are dropped, as node:http drops them", async () => {
    const big = await one(echo("{}", [`X-Big: ${"b".repeat(20_000)}`]));
    assert.deepEqual([big.status, JSON.parse(big.body).code, big.closed], [431, "HEADERS_TOO_LARGE", true]);
    // maxHeaders is 50 here: the 60 extra lines come after the capability header and are dropped.
    const many = await one(
      echo(
        "{}",
        Array.from({ length: 60 }, (_, i) => `X-H${i}: 1`),
      ),
    );
    assert.equal(many.status, 200);
  });

  const callCount = () => backend.calls.length;
  for (const [name, bytes] of [
    [
      "duplicate differing Content-Length",
      "POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    ],
    ["Content-Length -1", "POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nContent-Length: -1\r\n\r\n"],
    [
      "an invalid chunk size",
      "POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    ],
    ["CR in a header value", "POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: ec\rho\r\nContent-Length: 0\r\n\r\n"],
    ["obs-fold", "POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\n  folded\r\nContent-Length: 0\r\n\r\n"],
    ["HTTP/1.1 without Host", "POST /infer HTTP/1.1\r\nX-Capability-Type: echo\r\nContent-Length: 0\r\n\r\n"],
  ]) {
    test(`${name} → 400 and close, the backend never called`, async () => {
      const n = callCount();
      const a = await one(bytes!);
      assert.deepEqual([a.status, a.closed, JSON.parse(a.body).code], [400, true, "MALFORMED_HTTP"]);
      assert.equal(backend.calls.length, n);
    });
  }

  test("CL+TE → 400 and close: the smuggled request behind it is never served", async () => {
    const smuggled = req("POST", "/infer", ["X-Capability-Type: smuggled"], "{}");
    const body = `0\r\n\r\n${smuggled}`;
    const n = callCount();
    const w = await Wire.open(port);
    w.write(
      `POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
    );
    const [a] = await w.next(1);
    assert.equal(a!.status, 400);
    assert.equal(await w.closesWithin(2_000), true);
    assert.equal(w.answers.length, 1);
    assert.equal(callCount(), n, "neither request reached the backend");
  });
});

describe("Expect, HTTP/1.0, Connection: close", () => {
  test("Expect: 100-continue → 100 before the body is sent, then the answer", async () => {
    const w = await Wire.open(port);
    w.write("POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    const [interim] = await w.next(1);
    assert.equal(interim!.status, 100);
    w.write("{}");
    const [, final] = await w.next(2);
    assert.deepEqual([final!.status, JSON.parse(final!.body).body], [200, "{}"]);
    w.destroy();
  });

  test("another expectation → 417 and close", async () => {
    const a = await one(echo("{}", ["Expect: something-else"]));
    assert.deepEqual([a.status, a.closed], [417, true]);
  });

  test("HTTP/1.0 → answered with Connection: close, then closed; with keep-alive it stays open", async () => {
    const a = await one("POST /infer HTTP/1.0\r\nX-Capability-Type: echo\r\nContent-Length: 2\r\n\r\n{}");
    assert.deepEqual([a.status, a.headers.connection, a.closed], [200, "close", true]);
    const w = await Wire.open(port);
    w.write("POST /infer HTTP/1.0\r\nConnection: keep-alive\r\nX-Capability-Type: echo\r\nContent-Length: 2\r\n\r\n{}");
    const [k] = await w.next(1);
    assert.equal(k!.headers.connection, "keep-alive");
    w.write("POST /infer HTTP/1.0\r\nX-Capability-Type: echo\r\nContent-Length: 2\r\n\r\n{}");
    await w.next(2);
    assert.equal(await w.closesWithin(2_000), true);
  });

  test("Connection: close → the answer says close, then the connection closes", async () => {
    const a = await one(echo("{}", ["Connection: close"]));
    assert.deepEqual([a.status, a.headers.connection, a.closed], [200, "close", true]);
  });
});

describe("slow clients and departures", () => {
  test("headers trickled past the headers timeout → 408 and close", async () => {
    const w = await Wire.open(port);
    void w.trickle("POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nX-Slow: abcdefghijklmnopqrstuvwxyz", 25);
    const [a] = await w.next(1, 3_000);
    assert.equal(a!.status, 408);
    assert.equal(await w.closesWithin(2_000), true);
  });

  test("a body that stops coming → 408 after the request timeout", async () => {
    const w = await Wire.open(port);
    w.write("POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nContent-Length: 10\r\n\r\nabc");
    const [a] = await w.next(1, 3_000);
    assert.equal(a!.status, 408);
    assert.equal(await w.closesWithin(2_000), true);
  });

  test("an idle keep-alive connection is closed after the keep-alive timeout", async () => {
    const w = await Wire.open(port);
    w.write(echo("{}"));
    await w.next(1);
    assert.equal(await w.closesWithin(3_000), true);
  });

  test("a client leaving mid-call aborts the call's signal", async () => {
    const aborted = backend.aborted;
    const w = await Wire.open(port);
    w.write(req("POST", "/infer", ["X-Capability-Type: hang"], "{}"));
    await waitFor("the call", () => backend.calls.some((c) => c.query.type === "hang" && !c.signal.aborted));
    w.destroy();
    await waitFor("the abort", () => backend.aborted === aborted + 1, 3_000);
  });
});

describe("the way to node:http", () => {
  test("a non-hot first request: the whole connection is node:http's, pipelined requests included", async () => {
    const open = ingress.connections;
    const w = await Wire.open(port);
    w.write(req("GET", "/v2/health/ready") + echo('{"p":1}') + req("GET", "/v2"));
    const [ready, inferred, meta] = await w.next(3);
    assert.deepEqual(JSON.parse(ready!.body), { ready: true });
    assert.equal(JSON.parse(inferred!.body).body, '{"p":1}');
    assert.equal(JSON.parse(meta!.body).name, "t");
    assert.equal(ingress.connections, open, "handed over: not the fast ingress's any more");
    w.destroy();
  });

  test("a non-hot first request whose head comes in pieces is handed over whole", async () => {
    const w = await Wire.open(port);
    // Each piece reaches the server in a read of its own.
    for (const piece of ["GET /v2/hea", "lth/live HTTP/1.1\r\nHo", "st: t\r\n"]) await w.writeApart(piece);
    w.write("\r\n");
    const [live] = await w.next(1);
    assert.deepEqual(JSON.parse(live!.body), { live: true });
    w.destroy();
  });

  test("a non-hot request after a hot one on the same connection is relayed, in order", async () => {
    const w = await Wire.open(port);
    const lives = nodeAnswered.filter((u) => u === "/v2/health/live").length;
    w.write(
      req("POST", "/infer", ["X-Capability-Type: echo", "X-Capability-Gate: relay-0"], "{}") +
        req("GET", "/v2/health/live") +
        echo("{}", ["X-Capability-Tag: relay"]),
    );
    // The relayed request and the third one are answered while the first is held; they still come after it.
    await waitFor("node:http answered the relayed request", () => nodeAnswered.filter((u) => u === "/v2/health/live").length > lives);
    await waitFor("the third request finished", () => ns(backend.finished, "relay").length === 1);
    assert.equal(w.answers.length, 0);
    backend.open("relay-0");
    const [first, live, last] = await w.next(3);
    assert.equal(first!.status, 200);
    assert.deepEqual([live!.status, JSON.parse(live!.body)], [200, { live: true }]);
    assert.equal(live!.headers.connection, "keep-alive");
    assert.equal(last!.status, 200);
    w.destroy();
  });

  test("unknown routes and wrong methods: the same answers as node:http's own port", async () => {
    for (const bytes of [req("POST", "/nope", [JSON_CT], "{}"), req("GET", "/infer"), req("PUT", "/v2/models/m/infer")]) {
      const fast = await one(bytes);
      const w = await Wire.open(nodePort);
      w.write(bytes);
      const [plain] = await w.next(1);
      w.destroy();
      assert.deepEqual([fast.status, fast.body, fast.headers.allow], [plain!.status, plain!.body, plain!.headers.allow]);
    }
    // …and relayed after a hot request
    const w = await Wire.open(port);
    w.write(echo("{}") + req("POST", "/nope", [JSON_CT], "{}"));
    const [, notFound] = await w.next(2);
    assert.deepEqual([notFound!.status, JSON.parse(notFound!.body).code], [404, "ROUTE_NOT_FOUND"]);
    w.destroy();
  });

  test("SSE /infer/stream: handed over on a fresh connection, relayed (chunked) after a hot request", async () => {
    const stream = req("POST", "/infer/stream", ["X-Capability-Type: s", JSON_CT], "{}");
    const chunked =
      "POST /infer/stream HTTP/1.1\r\nHost: t\r\nX-Capability-Type: s\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n";
    for (const bytes of [stream, echo("{}") + stream, echo("{}") + chunked]) {
      const w = await Wire.open(port);
      w.write(bytes);
      const answers = await w.next(bytes === stream ? 1 : 2);
      const sse = answers.at(-1)!;
      assert.equal(sse.headers["content-type"], "text/event-stream");
      assert.deepEqual(
        sse.body
          .split("\n\n")
          .filter(Boolean)
          .map((e) => JSON.parse(e.slice(6)).w),
        ["one", "two", "three"],
      );
      w.destroy();
    }
  });

  test("nothing leaks: every connection of these tests is gone", async () => {
    await waitFor("no open fast connections", () => ingress.connections === 0, 3_000);
  });
});

describe("shutdown", () => {
  test("close(): an answer in flight is delivered, a request still arriving gets 503, idle ones close, all within the grace", async () => {
    const p = await startPair();
    const busy = await Wire.open(p.port);
    busy.write(req("POST", "/infer", ["X-Capability-Gate: shutdown"], "{}"));
    const partial = await Wire.open(p.port);
    await partial.writeApart("POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: echo\r\nContent-Length: 10\r\n\r\nabc");
    const idle = await Wire.open(p.port);
    idle.write(echo("{}"));
    await idle.next(1);
    await waitFor("the busy call at the backend", () => backend.calls.some((c) => c.query.gate === "shutdown"));
    const grace = 5_000;
    const closing = p.close(grace);
    // While the busy call is held: the request still arriving gets 503, the idle connection closes.
    assert.equal((await partial.next(1))[0]!.status, 503);
    assert.equal(await idle.closesWithin(1_000), true);
    assert.equal(busy.answers.length, 0);
    const released = Date.now();
    backend.open("shutdown");
    await closing;
    assert.ok(Date.now() - released < grace, "closed when the answer was out, not at the end of the grace");
    assert.equal((await busy.next(1))[0]!.status, 200);
    for (const w of [busy, partial]) assert.equal(await w.closesWithin(1_000), true);
  });
});
