/**
 * Reading request bodies, for both ingresses and every route: refused by their headers alone
 * (Content-Encoding, a declared length over the limit), read up to the limit (a chunked body is
 * refused as soon as it crosses it), taken from the server's body budget as they arrive
 * (body-budget.ts), and small JSON bodies of the control plane parsed.
 */
import type { IncomingMessage } from "node:http";
import { AnyServeError } from "../errors.js";
import type { BodyHold } from "./body-budget.js";
import { EMPTY, type RequestHeaders } from "./http.js";

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
  hold?: BodyHold,
): void {
  let declared: number | undefined;
  try {
    declared = checkBodyHeaders(req.headers, limit);
    // The whole declared body is taken from the server's budget before any of it is read.
    if (hold !== undefined && declared !== undefined && declared > 0 && !hold.take(declared)) throw hold.overloaded(declared);
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
    // A chunked body takes from the budget as it arrives.
    if (hold !== undefined && declared === undefined && !hold.take(chunk.length)) {
      settled = true;
      req.resume();
      onError(hold.overloaded(chunk.length));
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
