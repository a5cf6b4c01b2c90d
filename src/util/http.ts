/**
 * Small HTTP pieces shared by every REST route and server: bounded body reading, JSON and error
 * answers, request ids, and listening on / closing a node:http server.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
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
    // Checked by hardenServer's request wrapper instead, so the 400 carries the catalogue's body.
    requireHostHeader: false,
  };
}

/**
 * Hardens a node:http server made with {@link serverOptions}, so that every answer it gives, even
 * to bytes it cannot read, is a catalogue error with its JSON body:
 * - the connection cap (Envoy-like);
 * - `CONNECT` — which node:http hands to a 'connect' listener and, without one, drops without a
 *   word — gets 405 METHOD_NOT_ALLOWED: anyserve is not a proxy;
 * - parse errors and slow clients ('clientError') get MALFORMED_HTTP / HEADERS_TOO_LARGE /
 *   PAYLOAD_TOO_LARGE / REQUEST_TIMEOUT ({@link parseError}), after the answers of the requests
 *   before them on the connection (node:http wrote its bare 400 at once, ahead of them, and dropped
 *   them), then the connection closes;
 * - a connection closing after its last answer lingers ({@link lingerClose}), so a client still
 *   sending gets that answer rather than a reset;
 * - an HTTP/1.1 request without Host gets 400 MALFORMED_HTTP, and an `Expect` other than
 *   100-continue 417 EXPECTATION_FAILED (node:http answered both with an empty body).
 * The fast ingress gives the same answers to the same bytes (frontend/fast-ingress/).
 */
export function hardenServer(server: Server, maxConnections = 10_000): void {
  server.maxConnections = maxConnections;
  server.on("clientError", onClientError);
  server.on("connection", (socket: Socket) => {
    // node:http closes a connection after its last answer (`Connection: close`: a refused body, a
    // 413 before the body came) with `destroySoon()` — destroyed as soon as the answer is written,
    // while the client may still be sending, which resets the connection under the answer. It
    // lingers instead.
    socket.destroySoon = () => lingerClose(socket);
  });
  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    // node:http checks the Expect header before 'request': Host is checked first here, as its own
    // `requireHostHeader` (turned off above) did, and as the fast ingress does.
    const err = req.headers.host === undefined ? noHost() : expectationFailed(req.headers.expect);
    sendError(res, err, { connection: "close" });
  });
  const listeners = server.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners("request");
  const dispatch = (req: IncomingMessage, res: ServerResponse): void => {
    for (const listener of listeners) listener(req, res);
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    reading.set(req.socket, { req, res });
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined) {
      sendError(res, noHost(), { connection: "close" });
      return;
    }
    // A GET or HEAD with a body is answered once its body has arrived (and been dropped: no route
    // reads one), so a malformed body is a 400 whenever its bytes come, not a 200 or a 400
    // depending on whether the route answered before they did.
    if (!req.complete && (req.method === "GET" || req.method === "HEAD")) {
      req.resume();
      req.once("end", () => dispatch(req, res));
      return;
    }
    dispatch(req, res);
  });
  server.on("connect", (req: IncomingMessage, socket: Duplex) => {
    const target = (req.url ?? "").slice(0, 200);
    closeWith(socket, new AnyServeError("METHOD_NOT_ALLOWED", `CONNECT ${JSON.stringify(target)} is not allowed: anyserve is not a proxy`));
  });
}

/**
 * Writes an error answer straight to a socket node:http gave up (a CONNECT, a refused upgrade, a
 * parse error), with `Connection: close`, then ends it and lets it linger ({@link lingerClose}).
 */
export function closeWith(socket: Duplex, err: unknown): void {
  const a = errorAnswer(err, { connection: "close" });
  let head = `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? "Error"}\r\n`;
  for (const [name, value] of Object.entries(a.headers)) head += `${name}: ${value}\r\n`;
  socket.on("error", () => undefined);
  socket.end(Buffer.concat([Buffer.from(`${head}\r\n`, "latin1"), a.body]));
  lingerClose(socket);
}

/** How long a closing connection waits for more bytes from its client before it closes (the linger's idle time). */
export const LINGER_IDLE_MS = 1_000;
/** How long a closing connection lingers at most once its last answer is written, whatever the client does. */
export const LINGER_MAX_MS = 5_000;
const lingering = new WeakSet<Duplex>();

/**
 * Lingering close, as Apache and nginx do it: the last answer has been handed to the socket
 * (`end()`, FIN after it), but the client may still be sending — the rest of a refused body,
 * bytes after a malformed request. Closing then would make the kernel answer those bytes with a
 * reset, and a reset makes the client's kernel drop whatever of the answer it has not read yet:
 * the client sees a broken connection instead of its 400 or 413. So once the answer is out the
 * socket keeps reading and drops what comes, and closes when the client ends too, or after
 * {@link LINGER_IDLE_MS} without a byte, or {@link LINGER_MAX_MS} whatever it does. Until the
 * answer is out, the write timeout governs a client that does not read it.
 */
export function lingerClose(socket: Duplex): void {
  if (socket.destroyed || lingering.has(socket)) return;
  lingering.add(socket);
  if (socket.writable) socket.end();
  socket.resume();
  let idle: NodeJS.Timeout | undefined;
  let max: NodeJS.Timeout | undefined;
  const close = (): void => {
    clearTimeout(idle);
    clearTimeout(max);
    socket.destroy();
  };
  const quiet = (): void => {
    clearTimeout(idle);
    idle = setTimeout(close, LINGER_IDLE_MS).unref();
  };
  const linger = (): void => {
    quiet();
    max = setTimeout(close, LINGER_MAX_MS).unref();
    socket.on("data", quiet);
  };
  socket.once("end", close);
  socket.once("close", () => {
    clearTimeout(idle);
    clearTimeout(max);
  });
  if (socket.writableFinished) linger();
  else socket.once("finish", linger);
}

/**
 * The error for bytes the HTTP parser (llhttp, either ingress's) refused, by its code: header block
 * too large → HEADERS_TOO_LARGE, chunk extensions too large → PAYLOAD_TOO_LARGE, the headers or
 * request timeout → REQUEST_TIMEOUT, anything else → MALFORMED_HTTP naming llhttp's reason.
 */
export function parseError(code: string | undefined, reason?: string): AnyServeError {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return new AnyServeError("HEADERS_TOO_LARGE", "the request's headers are over the 16 KiB limit");
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return new AnyServeError("PAYLOAD_TOO_LARGE", "the request's chunk extensions are over the limit");
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new AnyServeError("REQUEST_TIMEOUT", "the request did not arrive within the server's headers or request timeout");
    default:
      return new AnyServeError(
        "MALFORMED_HTTP",
        `the request is not valid HTTP/1.1: ${(reason ?? "").slice(0, 120) || "malformed"} (${String(code ?? "unknown").slice(0, 40)})`,
      );
  }
}

/** 400 for an HTTP/1.1 request without Host (RFC 9112 §3.2). */
export function noHost(): AnyServeError {
  return new AnyServeError("MALFORMED_HTTP", "an HTTP/1.1 request needs a Host header");
}

/** 417 for an `Expect` other than `100-continue`. */
export function expectationFailed(value: unknown): AnyServeError {
  return new AnyServeError(
    "EXPECTATION_FAILED",
    `Expect ${JSON.stringify(String(value ?? "").slice(0, 64))} is not supported: only 100-continue is`,
  );
}

/** Sockets whose parse error is being answered (node:http reports each later read's error again). */
const answering = new WeakSet<Duplex>();
/** The last request node:http parsed on a socket, and its answer: a parse error may belong to its body. */
const reading = new WeakMap<Duplex, { req: IncomingMessage; res: ServerResponse }>();

/**
 * node:http's 'clientError': answers a parse error or a timeout with the catalogue's body once the
 * answers of the requests before it on the connection are written, then closes; socket errors
 * (reset, broken pipe) just close.
 */
function onClientError(err: Error & { code?: string; reason?: string }, socket: Duplex): void {
  const code = err.code ?? "";
  const answerable = code.startsWith("HPE_") || code === "ERR_HTTP_REQUEST_TIMEOUT";
  if (!answerable) {
    socket.destroy();
    return;
  }
  if (answering.has(socket)) return;
  if (!socket.writable) {
    // Ended already (an answer with `Connection: close` is being written): it lingers, so these
    // bytes, read and dropped, do not reset the connection under that answer.
    lingerClose(socket);
    return;
  }
  answering.add(socket);
  const error = parseError(code, err.reason);
  const last = reading.get(socket);
  if (last !== undefined && !last.req.complete && last.res.headersSent) {
    // The bytes are the body of a request whose answer has begun (a route that answers before
    // reading the body, e.g. 405): that answer stands, and the connection closes after it — one
    // answer whatever the timing, not a second one when the first happened to be written already.
    if (last.res.writableFinished) lingerClose(socket);
    else last.res.once("finish", () => lingerClose(socket));
    return;
  }
  const s = socket as Duplex & { _httpMessage?: (ServerResponse & { _last?: boolean }) | null };
  const afterPending = (): void => {
    const pending = s._httpMessage;
    if (!socket.writable) {
      lingerClose(socket);
      return;
    }
    if (pending?._last === true) return; // the answer there closes the connection (a refused request, Connection: close): nothing more is said
    if (pending === null || pending === undefined || pending.writableFinished) {
      closeWith(socket, error);
      return;
    }
    if (!pending.req.complete) {
      // The request the bytes belong to: its answer is this error (node:http's own rule: now,
      // unless its answer has begun, and then the connection can only be cut).
      if (pending.headersSent) socket.destroy();
      else closeWith(socket, error);
      return;
    }
    // An answer to an earlier request goes first; ours follows it.
    const next = (): void => {
      pending.off("finish", next);
      pending.off("close", next);
      process.nextTick(afterPending);
    };
    pending.on("finish", next);
    pending.on("close", next);
  };
  afterPending();
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
    if (lower === "upgrade" || lower === "connection") continue;
    text += `${name}: ${raw[i + 1]!}\r\n`;
  }
  // The connection closes after this answer, as the fast ingress closes it after a relayed
  // upgrade offer: bytes the client sent behind an upgrade offer may have been read by the parser
  // that gave the socket up, so requests pipelined behind it could not be answered reliably.
  const bytes = Buffer.concat([Buffer.from(`${text}Connection: close\r\n\r\n`, "latin1"), head]);
  socket.unshift(bytes);
  server.emit("connection", socket);
}

/** A route of a REST server, by "METHOD /path" (the front end's own and the control, management and deployment routes). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

export const EMPTY = Buffer.alloc(0);

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
 * The answer for an error, with its catalogue status. 503s and 429s carry Retry-After, 401s a
 * `WWW-Authenticate` challenge; 413s close the connection (the rest of the body is not read).
 * Shared by {@link sendError} and the fast ingress, which writes it to its socket itself.
 */
export function errorAnswer(err: unknown, extraHeaders: Record<string, string> = {}): ErrorAnswer {
  const e = AnyServeError.from(err, "INTERNAL");
  const body = Buffer.from(JSON.stringify(e.toJSON()));
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": body.length,
    ...extraHeaders,
  };
  if (e.httpStatus === 503 || e.httpStatus === 429) headers["retry-after"] = retryAfterOf(e);
  if (e.code === "PAYLOAD_TOO_LARGE") headers.connection = "close";
  if (e.code === "UNAUTHENTICATED" && headers["www-authenticate"] === undefined) headers["www-authenticate"] = wwwAuthenticate(e);
  return { error: e, status: e.httpStatus, headers, body };
}

/** Seconds a 503 (or 429) asks the caller to wait: what the error says (`retry_after_s`, e.g. a cold start's expected time), else 1. */
function retryAfterOf(e: AnyServeError): string {
  const s = e.data?.retry_after_s;
  return typeof s === "number" && Number.isFinite(s) && s >= 1 ? String(Math.min(3600, Math.ceil(s))) : "1";
}

/**
 * The `WWW-Authenticate` challenge of a 401 (RFC 6750): `Bearer realm="anyserve"`, with the scope
 * the route needs and `error="invalid_token"` when a token was sent but is not the right one
 * (both from the error's data, when the check that threw put them there).
 */
function wwwAuthenticate(e: AnyServeError): string {
  const data = e.data ?? {};
  const scope = typeof data.scope === "string" ? `, scope="${data.scope}"` : "";
  return `Bearer realm="anyserve"${scope}${data.presented === true ? ', error="invalid_token"' : ""}`;
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
