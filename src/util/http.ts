/**
 * Small HTTP pieces shared by every REST route and server: bounded body reading, JSON and error
 * answers, request ids, and listening on / closing a node:http server.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { AnyServeError } from "../errors.js";
import { envInt } from "./env.js";

/**
 * Limits against slow clients. Node's own defaults are 60 s for headers and 300 s for a request,
 * checked only every 30 s; ours are tighter and checked every second.
 */
export function serverOptions(): ServerOptions {
  return {
    headersTimeout: envInt("ANYSERVE_HEADERS_TIMEOUT_MS", 10_000, 100),
    requestTimeout: envInt("ANYSERVE_REQUEST_TIMEOUT_MS", 60_000, 100),
    keepAliveTimeout: 5_000,
    connectionsCheckingInterval: Math.min(1_000, envInt("ANYSERVE_HEADERS_TIMEOUT_MS", 10_000, 100)),
    maxHeaderSize: 16 * 1024,
  };
}

/**
 * Applies the connection cap (Envoy-like) to a node:http server, and answers `CONNECT` — which
 * node:http hands to a 'connect' listener and, without one, drops without a word — with 405
 * METHOD_NOT_ALLOWED: anyserve is not a proxy.
 */
export function hardenServer(server: Server, maxConnections = 10_000): void {
  server.maxConnections = maxConnections;
  server.on("connect", (req: IncomingMessage, socket: Duplex) => {
    const target = (req.url ?? "").slice(0, 200);
    closeWith(socket, new AnyServeError("METHOD_NOT_ALLOWED", `CONNECT ${JSON.stringify(target)} is not allowed: anyserve is not a proxy`));
  });
}

/**
 * Writes an error answer straight to a socket node:http gave up (a CONNECT, a refused upgrade),
 * with `Connection: close`, then ends it; a peer that does not close is destroyed after a second.
 */
export function closeWith(socket: Duplex, err: unknown): void {
  const a = errorAnswer(err, { connection: "close" });
  let head = `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? "Error"}\r\n`;
  for (const [name, value] of Object.entries(a.headers)) head += `${name}: ${value}\r\n`;
  socket.on("error", () => undefined);
  socket.end(Buffer.concat([Buffer.from(`${head}\r\n`, "latin1"), a.body]));
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/**
 * Answers a request that offered an upgrade this server does not take as a plain HTTP/1.1
 * request: node:http has handed the socket to its 'upgrade' listener (it does so for every
 * `Connection: upgrade` request once one listens, whatever the route), so the request's head is
 * written again without the offer (`Upgrade`, and `upgrade` in `Connection`), put back in front of
 * the bytes that followed it (node:http did not read the body of an upgrade request), and the
 * socket is given to node:http as a new connection. Clients that offer `h2c` or `websocket` to a
 * route that does not upgrade get their ordinary answer, as RFC 9110 §7.8 lets a server ignore
 * the offer.
 */
export function answerWithoutUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === "upgrade") continue;
    let value = raw[i + 1]!;
    if (lower === "connection") {
      value = value
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t.length > 0 && t.toLowerCase() !== "upgrade")
        .join(", ");
      if (value === "") continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  const bytes = Buffer.concat([Buffer.from(`${text}\r\n`, "latin1"), head]);
  socket.unshift(bytes);
  server.emit("connection", socket);
}

/** A route of a REST server, by "METHOD /path" (the front end's own and the control, management and deployment routes). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

export const EMPTY = Buffer.alloc(0);

/**
 * Refuses a body by its headers alone: a Content-Encoding (415: sizes are checked on what the
 * handler would see, so compressed bodies are refused) or a declared Content-Length over `limit`
 * (413, before any byte is read). Returns the declared length, if any. Shared with the fast ingress.
 */
export function checkBodyHeaders(headers: RequestHeaders, limit: number): number | undefined {
  const raw = headers["content-encoding"];
  const encoding = Array.isArray(raw) ? raw.join(", ") : raw;
  if (encoding !== undefined && encoding !== "identity") {
    throw new AnyServeError(
      "UNSUPPORTED_MEDIA_TYPE",
      `Content-Encoding '${encoding.slice(0, 32)}' is not accepted: send the body uncompressed`,
    );
  }
  const declared = headers["content-length"];
  if (declared === undefined) return undefined;
  const n = Number(declared);
  if (n > limit) throw tooLarge(limit, n);
  return n;
}

/** Reads a body up to `limit` bytes, after {@link checkBodyHeaders}; a chunked body is refused as soon as it crosses the limit. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => collectBody(req, limit, resolve, reject));
}

/**
 * {@link readBody} with callbacks, for the inference routes: exactly one of `onBody` and `onError`
 * is called. No promise, and the listeners stay on the request once it is read (node:http drops
 * it after the answer): adding and removing four listeners per request showed in the gateway's
 * profile.
 */
export function collectBody(
  req: IncomingMessage,
  limit: number,
  onBody: (body: Buffer) => void,
  onError: (err: AnyServeError) => void,
): void {
  let declared: number | undefined;
  try {
    declared = checkBodyHeaders(req.headers, limit);
  } catch (err) {
    onError(err as AnyServeError);
    return;
  }
  if (declared === 0) {
    onBody(EMPTY);
    return;
  }
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let size = 0;
  let settled = false;
  const fail = (why: string): void => {
    if (settled) return;
    settled = true;
    onError(new AnyServeError("CANCELLED", `the client went away while sending the body: ${why}`));
  };
  req.on("data", (chunk: Buffer) => {
    if (settled) return;
    size += chunk.length;
    if (size > limit) {
      settled = true;
      req.resume(); // the rest is read and dropped, so the connection can answer the 413
      onError(tooLarge(limit, size, true));
      return;
    }
    if (first === undefined) first = chunk;
    else (more ??= [first]).push(chunk);
  });
  req.on("end", () => {
    if (settled) return;
    settled = true;
    onBody(more === undefined ? (first ?? EMPTY) : Buffer.concat(more, size));
  });
  req.on("error", (err: Error) => fail(err.message));
  req.on("aborted", () => fail("aborted"));
}

/** PAYLOAD_TOO_LARGE for a body of `got` bytes (`partial`: it passed the limit while arriving). */
export function tooLarge(limit: number, got: number, partial = false): AnyServeError {
  return new AnyServeError("PAYLOAD_TOO_LARGE", `request body ${partial ? "passed" : "is"} ${got} bytes: expected at most ${limit} bytes`);
}

/** Reads and parses a small JSON body (control plane). */
export async function readJson(req: IncomingMessage, limit = 1 << 20): Promise<unknown> {
  const body = await readBody(req, limit);
  if (body.length === 0) throw new AnyServeError("INVALID_JSON", "request body is empty: expected a JSON object");
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new AnyServeError("INVALID_JSON", `request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
}

/** An error answer as {@link sendError} writes it: status, headers and the `{"error", "code"}` body. */
export interface ErrorAnswer {
  error: AnyServeError;
  status: number;
  headers: Record<string, string | number>;
  body: Buffer;
}

/**
 * The answer for an error, with its catalogue status. 503s carry Retry-After; 413s close the
 * connection (the rest of the body is not read). Shared by {@link sendError} and the fast
 * ingress, which writes it to its socket itself.
 */
export function errorAnswer(err: unknown, extraHeaders: Record<string, string> = {}): ErrorAnswer {
  const e = AnyServeError.from(err, "INTERNAL");
  const body = Buffer.from(JSON.stringify(e.toJSON()));
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": body.length,
    ...extraHeaders,
  };
  if (e.httpStatus === 503) headers["retry-after"] = "1";
  if (e.code === "PAYLOAD_TOO_LARGE") headers.connection = "close";
  return { error: e, status: e.httpStatus, headers, body };
}

/** Answers an error as {@link errorAnswer} says; a response already started is cut off instead. */
export function sendError(res: ServerResponse, err: unknown, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const a = errorAnswer(err, extraHeaders);
  res.writeHead(a.status, a.headers);
  res.end(a.body);
}

const REQUEST_ID = /^[\w.-]{1,128}$/;
let counter = 0;
const prefix = `${process.pid.toString(36)}-${Date.now().toString(36)}-`;

/**
 * A request's headers by lower-case name, as node:http's `req.headers` has them (the fast ingress
 * builds the same from llhttp's raw list), so header reading is shared by both ingresses.
 */
export type RequestHeaders = Record<string, string | string[] | undefined>;

/** The caller's `x-request-id` when it is safe to echo, else a fresh one (never echo raw input). */
export function requestIdOf(headers: RequestHeaders): string {
  const given = headers["x-request-id"];
  if (typeof given === "string" && REQUEST_ID.test(given)) return given;
  return newRequestId();
}

export function newRequestId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return prefix + counter.toString(36);
}

/** Parses a non-negative integer header; undefined when absent, INVALID_HEADER when malformed. */
export function intHeader(headers: RequestHeaders, name: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = headers[name];
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? raw[0]! : raw;
  if (!/^\d{1,16}$/.test(text) || Number(text) > max) {
    throw new AnyServeError(
      "INVALID_HEADER",
      `header '${name}': expected a non-negative integer up to ${max}, got ${JSON.stringify(text.slice(0, 32))}`,
    );
  }
  return Number(text);
}

/** Listens on `host:port` (0: any free port); resolves with the bound port. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes a server: idle keep-alive connections at once, busy ones when their answer is sent, stragglers after `graceMs`. */
export function closeServer(server: Server, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
