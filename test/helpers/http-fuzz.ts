/**
 * A seeded HTTP/1.1 request fuzzer for the suite: valid requests to a server's routes, mutated the
 * way hostile or broken clients do (methods, paths, headers, bodies, chunking, pipelining,
 * truncation, huge values), and a raw client that sends one case on a fresh connection and reads
 * every answer back. The same seed gives the same cases, so a failure prints its seed and case
 * index and can be replayed (`caseAt(seed, routes, i)`).
 */
import { connect } from "node:net";
import { takeReply, type WireReply } from "./http-wire.js";

export type { WireReply };

/** Server env for fuzzing: short timeouts, so a request that never completes is answered (408) within a case's wait. */
export const FUZZ_ENV = { ANYSERVE_HEADERS_TIMEOUT_MS: "1000", ANYSERVE_REQUEST_TIMEOUT_MS: "1500" };

/** mulberry32: small, fast, good enough to spread cases; the same seed gives the same stream. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A route of the server under test: how a valid request to it looks. */
export interface RouteSpec {
  method: string;
  path: string;
  headers?: [string, string][];
  body?: string;
}

/** One request as the generator builds it before it becomes bytes. */
interface Req {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  body: Buffer;
  /** Body framing: a Content-Length is added unless the mutation says otherwise. */
  framing: "length" | "chunked" | "none";
  eol: string;
}

export interface FuzzCase {
  /** What was done to the request(s), for the failure message. */
  name: string;
  /** The bytes, in the pieces they are written in (split anywhere: the parser must not care). */
  parts: Buffer[];
  /** Complete requests in the bytes the server may answer (a client waits for this many answers). */
  expect: number;
  /** Methods of those requests, in order (a HEAD answer has no body). */
  methods: string[];
  /** The client half-closes after writing (a request cut short). */
  fin: boolean;
}

const JSON_BODY = JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["fuzz"] }] });

/** Requests a server of anyserve takes, valid; `extra` adds the server's own routes. */
export function inferenceRoutes(extra: RouteSpec[] = []): RouteSpec[] {
  const json: [string, string] = ["Content-Type", "application/json"];
  return [
    { method: "POST", path: "/infer", headers: [["X-Capability-Type", "echo"], json], body: JSON_BODY },
    { method: "POST", path: "/infer/json", headers: [["X-Capability-Type", "echo"], json], body: JSON_BODY },
    { method: "POST", path: "/infer/stream", headers: [["X-Capability-Type", "ticks"], json], body: JSON_BODY },
    { method: "POST", path: "/v2/models/echo/infer", headers: [json], body: JSON_BODY },
    { method: "POST", path: "/v2/models/echo/versions/1/infer", headers: [json], body: JSON_BODY },
    { method: "POST", path: "/v2/models/ticks/generate_stream", headers: [json], body: JSON_BODY },
    { method: "GET", path: "/v2/models/echo" },
    { method: "GET", path: "/v2/models/echo/ready" },
    { method: "GET", path: "/v2" },
    { method: "GET", path: "/v2/health/live" },
    { method: "GET", path: "/v2/health/ready" },
    ...extra,
  ];
}

const METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "FOO", "get", "POST ", "M-SEARCH", "PROPFIND"];
const VERSIONS = ["HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/1", "http/1.1", "HTTP/11", ""];
const JUNK_PATHS = [
  "/v2/models/%ZZ/infer",
  "/v2/models/a%2Fb/infer",
  "/v2/models//infer",
  "/v2/models/../../etc/passwd",
  "/v2/models/%00/infer",
  "/infer?x=1&y=%ZZ",
  "*",
  "http://example.com/infer",
  "/nope",
  "/v2/models/echo/versions//infer",
  "/v2/models/echo/bogus",
  "//infer",
  "/infer#frag",
  "/%",
];
const CONTENT_TYPES = [
  "application/json",
  "application/octet-stream",
  "application/x-protobuf",
  "text/plain",
  "application/json; charset=utf-8",
  "",
  "multipart/form-data; boundary=x",
  "application/json\u0000",
];
const BODIES = ["", "{", "null", "[]", '{"inputs": []}', '{"inputs": [{"name": 1}]}', "\u0000\u0001\u0002", '{"a":'.repeat(200), JSON_BODY];

/** The mutations, by name; each changes a request (or the case) in place. */
const MUTATIONS: Record<string, (r: Req, c: Builder) => void> = {
  method: (r, c) => {
    r.method = c.pick(METHODS);
  },
  path: (r, c) => {
    r.target = c.pick(JUNK_PATHS);
  },
  longPath: (r, c) => {
    r.target = `/${"a".repeat(c.int(1_000, 20_000))}`;
  },
  version: (r, c) => {
    r.version = c.pick(VERSIONS);
  },
  noHost: (r) => {
    r.headers = r.headers.filter(([n]) => n.toLowerCase() !== "host");
  },
  twoHosts: (r) => {
    r.headers.push(["Host", "other"]);
  },
  contentType: (r, c) => {
    setHeader(r, "Content-Type", c.pick(CONTENT_TYPES));
  },
  body: (r, c) => {
    r.body = Buffer.from(c.pick(BODIES));
  },
  garbageBody: (r, c) => {
    r.body = c.bytes(c.int(1, 4_096));
  },
  wrongLength: (r, c) => {
    r.framing = "none";
    const n = r.body.length + c.pick([-5, -1, 1, 7]);
    r.headers.push(["Content-Length", String(Math.max(0, n))]);
    c.fin = true; // a body shorter than declared only ends with the client
  },
  badLength: (r, c) => {
    r.framing = "none";
    r.headers.push(["Content-Length", c.pick(["-1", "abc", "1e3", " 12", "0x10", "99999999999999999999", ""])]);
  },
  hugeLength: (r) => {
    r.framing = "none";
    r.headers.push(["Content-Length", String(3 * 1024 ** 3)]);
  },
  twoLengths: (r) => {
    r.framing = "none";
    r.headers.push(["Content-Length", String(r.body.length)], ["Content-Length", String(r.body.length + 1)]);
  },
  chunked: (r) => {
    r.framing = "chunked";
  },
  chunkedAndLength: (r) => {
    r.framing = "chunked";
    r.headers.push(["Content-Length", String(r.body.length)]);
  },
  badChunk: (r, c) => {
    r.framing = "none";
    r.headers.push(["Transfer-Encoding", "chunked"]);
    r.body = Buffer.from(
      c.pick(["zz\r\nabc\r\n0\r\n\r\n", "5\r\nab\r\n0\r\n\r\n", `5;${"x".repeat(20_000)}\r\nabcde\r\n0\r\n\r\n`, "-1\r\n\r\n"]),
    );
  },
  teVariant: (r, c) => {
    r.framing = "none";
    r.headers.push(["Transfer-Encoding", c.pick(["gzip, chunked", "chunked, gzip", "identity", "xchunked", " chunked"])]);
  },
  encoding: (r, c) => {
    r.headers.push(["Content-Encoding", c.pick(["gzip", "br", "identity", "x"])]);
  },
  getWithBody: (r, c) => {
    r.method = "GET";
    r.body = Buffer.from(c.pick(BODIES.slice(1)));
  },
  chunkedGet: (r) => {
    r.method = "GET";
    r.framing = "chunked";
    r.body = Buffer.from("hello");
  },
  manyHeaders: (r, c) => {
    const n = c.pick([100, 255, 256, 257, 300, 1000, 1999, 2000, 2001, 2500]);
    for (let i = 0; i < n; i++) r.headers.push([`x-h${i}`, "v"]);
  },
  bigHeader: (r, c) => {
    r.headers.push(["X-Big", "v".repeat(c.pick([4_000, 8_000, 8_192, 12_000, 16_000, 16_384, 17_000, 40_000]))]);
  },
  badHeaderName: (r, c) => {
    r.headers.push([c.pick(["Bad Name", "x:y", "", "\u00ff", "x\u0000", "(x)"]), "v"]);
  },
  badHeaderValue: (r, c) => {
    r.headers.push(["X-Bad", c.pick(["a\rb", "a\u0000b", "\u007f", "\u00e9t\u00e9", " lead", "trail "])]);
  },
  foldedHeader: (r) => {
    r.headers.push(["X-Fold", "a\r\n b"]);
  },
  capability: (r, c) => {
    setHeader(r, "X-Capability-Type", c.pick(["", "nope", "echo", "x".repeat(300), "\u00e9", "a,b"]));
    if (c.chance(0.3)) r.headers.push([`X-Capability-${c.pick(["", "-", "Model", "a_b", "x".repeat(100)])}`, "v"]);
  },
  anyserveHeaders: (r, c) => {
    r.headers.push([
      c.pick(["X-Anyserve-Timeout-Ms", "Inference-Header-Content-Length", "X-Request-Id", "X-Anyserve-Affinity"]),
      c.pick(["-1", "abc", "0", "999999999999999999", "x".repeat(500), "1.5", "12"]),
    ]);
  },
  expect: (r, c) => {
    r.headers.push(["Expect", c.pick(["100-continue", "200-ok", "100-Continue", ""])]);
  },
  connection: (r, c) => {
    setHeader(r, "Connection", c.pick(["close", "keep-alive", "upgrade", "Upgrade, HTTP2-Settings", "close, close", "foo"]));
    if (c.chance(0.5)) r.headers.push(["Upgrade", c.pick(["h2c", "websocket", "anyserve-frames", "x"])]);
  },
  lfOnly: (r) => {
    r.eol = "\n";
  },
  spaceInTarget: (r) => {
    r.target = `${r.target} x`;
  },
};

/** A value of the case being built: the random stream and the case's flags. */
class Builder {
  fin = false;
  constructor(private readonly next: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

function setHeader(r: Req, name: string, value: string): void {
  r.headers = r.headers.filter(([n]) => n.toLowerCase() !== name.toLowerCase());
  r.headers.push([name, value]);
}

function reqOf(route: RouteSpec): Req {
  return {
    method: route.method,
    target: route.path,
    version: "HTTP/1.1",
    headers: [["Host", "fuzz"], ...(route.headers ?? []).map(([n, v]) => [n, v] as [string, string])],
    body: Buffer.from(route.body ?? ""),
    framing: route.body === undefined ? "none" : "length",
    eol: "\r\n",
  };
}

function bytesOf(r: Req): Buffer {
  const eol = r.eol;
  const headers = [...r.headers];
  let body = r.body;
  if (r.framing === "length") headers.push(["Content-Length", String(body.length)]);
  if (r.framing === "chunked") {
    headers.push(["Transfer-Encoding", "chunked"]);
    body =
      body.length === 0
        ? Buffer.from("0\r\n\r\n")
        : Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]);
  }
  const line = r.version === "" ? `${r.method} ${r.target}` : `${r.method} ${r.target} ${r.version}`;
  const head = `${line}${eol}${headers.map(([n, v]) => `${n}: ${v}${eol}`).join("")}${eol}`;
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}

/** Case `index` of the campaign `seed` over `routes`: one to three mutations of a valid request, maybe pipelined, split, cut. */
export function caseAt(seed: number, routes: readonly RouteSpec[], index: number): FuzzCase {
  const c = new Builder(rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0));
  const route = c.pick(routes);
  const req = reqOf(route);
  const names: string[] = [`${route.method} ${route.path}`];
  const n = c.chance(0.1) ? 0 : c.int(1, 3);
  for (let i = 0; i < n; i++) {
    const name = c.pick(Object.keys(MUTATIONS));
    MUTATIONS[name]!(req, c);
    names.push(name);
  }
  let bytes = bytesOf(req);
  let expect = 1;
  const methods = [req.method.trim().toUpperCase()];
  // Pipelining: another valid request, or junk, behind the first.
  if (c.chance(0.15)) {
    if (c.chance(0.5)) {
      const second = reqOf(c.pick(routes));
      bytes = Buffer.concat([bytes, bytesOf(second)]);
      expect++;
      methods.push(second.method);
      names.push("pipelined");
    } else {
      bytes = Buffer.concat([bytes, c.chance(0.5) ? c.bytes(c.int(1, 64)) : Buffer.from("GARBAGE / HTTP/1.1\r\n\r\n")]);
      expect++;
      methods.push("GET");
      names.push("pipelinedJunk");
    }
  }
  // Truncation: the client sends part of it and half-closes.
  if (c.chance(0.08)) {
    bytes = bytes.subarray(0, c.int(0, bytes.length - 1));
    c.fin = true;
    names.push("truncated");
  }
  // Written in pieces cut anywhere.
  const parts: Buffer[] = [];
  if (c.chance(0.3) && bytes.length > 1) {
    let at = 0;
    while (at < bytes.length) {
      const size = c.int(1, Math.max(1, Math.ceil(bytes.length / 3)));
      parts.push(bytes.subarray(at, at + size));
      at += size;
    }
    names.push(`split×${parts.length}`);
  } else parts.push(bytes);
  return { name: names.join(" + "), parts, expect, methods, fin: c.fin };
}

/** What a server did with a case. */
export interface Exchange {
  /** Final answers (1xx interim answers left out), in order. */
  replies: WireReply[];
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** Neither all expected answers nor a close came in time. */
  timedOut: boolean;
  /** Bytes after the last complete answer (a malformed answer, or one cut off). */
  leftover: number;
}

/** Sends `c` to 127.0.0.1:`port` on a fresh connection and reads the answers. */
export function exchange(port: number, c: FuzzCase, timeoutMs = 5_000): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    let data: Buffer = Buffer.alloc(0);
    const replies: WireReply[] = [];
    let closed = false;
    let done = false;
    const finish = (timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ replies, closed, timedOut, leftover: data.length });
    };
    let leaving = false;
    let timer = setTimeout(() => finish(true), timeoutMs);
    const parse = (): void => {
      for (;;) {
        const r = takeReply(data, c.methods[replies.length] ?? "GET", closed);
        if (r === undefined) break;
        data = r.rest;
        if (r.reply.status >= 200 || r.reply.status < 100) replies.push(r.reply);
      }
      // Every expected answer is in: the client leaves (FIN) once all its bytes are written, and
      // reads on until the server closes, so an answer the server gives bytes after a complete
      // request (junk: a 400) is counted whatever the timing.
      if (replies.length >= c.expect && !leaving) {
        leaving = true;
        void written.then(() => {
          if (!socket.destroyed) socket.end();
        });
        clearTimeout(timer);
        timer = setTimeout(() => finish(false), Math.min(timeoutMs, 2_000));
      }
    };
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      parse();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      closed = true;
      parse();
      finish(false);
    });
    const written = new Promise<void>((resolve) =>
      socket.on("connect", () => {
        void (async () => {
          for (const p of c.parts) {
            if (socket.destroyed) break;
            socket.write(p);
            if (c.parts.length > 1) await new Promise((r) => setImmediate(r));
          }
          if (c.fin && !socket.destroyed) socket.end();
          resolve();
        })();
      }),
    );
  });
}

/** An error answer's `code`, when its body is the catalogue's JSON (`{"error", "code"}`). */
export function codeOf(reply: WireReply): string | undefined {
  if (!/json/.test(reply.headers["content-type"] ?? "")) return undefined;
  try {
    const v = JSON.parse(reply.body.toString("utf8")) as { code?: unknown };
    return typeof v.code === "string" ? v.code : undefined;
  } catch {
    return undefined;
  }
}

/** A compact account of an exchange, to compare two servers' or to print. */
export function summary(e: Exchange): string {
  const replies = e.replies.map((r) => `${r.status}${codeOf(r) ? ` ${codeOf(r)}` : r.status >= 400 ? " (bare)" : ""}`);
  return `[${replies.join(", ")}]${e.timedOut ? " timeout" : e.closed ? " closed" : ""}`;
}
