/**
 * Response heads written by hand, with the headers node:http writes for the same answer (the REST
 * front end's, in its order, then `Date`, `Connection`, `Keep-Alive`), so a client sees the same
 * answer from either ingress. Heads are latin1 strings; the body is written after them.
 */
import { STATUS_CODES } from "node:http";
import { AnyServeError } from "../../errors.js";
import { HEADER_INFERENCE_LENGTH, type EncodedBody } from "../../protocol/types.js";
import { errorAnswer, type ErrorAnswer } from "../../util/http.js";

/** Bodies up to this size are copied behind their head into one buffer (one write); larger ones go as a second write. */
const COPY_LIMIT = 16 * 1024;

export const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";

let dateSecond = -1;
let dateLine = "";

/** `Date: …\r\n`, formatted once per second (node:http caches it the same way). */
function date(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `Date: ${new Date(now).toUTCString()}\r\n`;
  }
  return dateLine;
}

/** The connection lines and the blank line ending a head. */
export class HeadEnd {
  readonly #keepAlive: string;
  constructor(keepAliveTimeoutMs: number) {
    this.#keepAlive = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(keepAliveTimeoutMs / 1000)}\r\n\r\n`;
  }
  of(keepAlive: boolean): string {
    return date() + (keepAlive ? this.#keepAlive : "Connection: close\r\n\r\n");
  }
}

/** Content types are the replica's; checked once per distinct value so none can split the head. */
const SAFE_VALUE = /^[\t\x20-\x7e]{1,256}$/;
let lastType = "";
let lastPrefix = "";

/**
 * The head of a 200 inference answer, as the REST front end's `writeHead` produces it; undefined
 * when the replica's content type cannot be a header value.
 */
export function okHead(out: EncodedBody, requestId: string, end: HeadEnd, keepAlive: boolean): string | undefined {
  if (out.contentType !== lastType) {
    if (!SAFE_VALUE.test(out.contentType)) return undefined;
    lastType = out.contentType;
    lastPrefix = `HTTP/1.1 200 OK\r\ncontent-type: ${lastType}\r\ncontent-length: `;
  }
  const binary = out.headerLength === undefined ? "" : `${HEADER_INFERENCE_LENGTH}: ${out.headerLength}\r\n`;
  return `${lastPrefix}${out.body.length}\r\nx-request-id: ${requestId}\r\n${binary}${end.of(keepAlive)}`;
}

/** A head for any status and header set (error answers, relayed answers). `Connection` is left out: `end` adds it. */
export function head(
  status: number,
  message: string,
  headers: Record<string, string | number> | (string | number)[],
  end: HeadEnd,
  keepAlive: boolean,
): string {
  let text = `HTTP/1.1 ${status} ${message}\r\n`;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  } else {
    for (const name in headers) if (name !== "connection") text += `${name}: ${headers[name]}\r\n`;
  }
  return text + end.of(keepAlive);
}

/** An error answer, as `sendError` would write it; `close` is true when it asks for the connection to close (413). */
export function errorHead(
  err: unknown,
  end: HeadEnd,
  keepAlive: boolean,
  extra?: Record<string, string>,
): { answer: ErrorAnswer; head: string; close: boolean } {
  const answer = errorAnswer(err, extra);
  const close = !keepAlive || answer.headers.connection === "close";
  return { answer, head: head(answer.status, STATUS_CODES[answer.status] ?? "Unknown", answer.headers, end, !close), close };
}

/** The error a replica answer that cannot be written becomes. */
export const BAD_CONTENT_TYPE = (): AnyServeError =>
  new AnyServeError("UPSTREAM_PROTOCOL_ERROR", "the replica answered with a Content-Type that is not a valid header value");

/** Writes a head and its body: one buffer for small bodies, two writes under one cork for large ones. */
export function writeAnswer(
  socket: { write(b: Buffer | string, enc?: BufferEncoding): boolean; cork(): void; uncork(): void },
  text: string,
  body: Buffer | undefined,
): void {
  const size = body === undefined ? 0 : body.length;
  if (size <= COPY_LIMIT) {
    const buf = Buffer.allocUnsafe(text.length + size);
    buf.write(text, 0, "latin1");
    if (size > 0) body!.copy(buf, text.length);
    socket.write(buf);
    return;
  }
  socket.cork();
  socket.write(text, "latin1");
  socket.write(body!);
  socket.uncork();
}
