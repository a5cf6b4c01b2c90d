/**
 * The object endpoint every replica serves on its REST port, so replicas that share no directory
 * can read each other's objects:
 *
 * - `GET /objects/{id}` — the bytes, streamed from disk (1 MiB reads); `Range: bytes=a-b`,
 *   `bytes=a-` and `bytes=-n` answer 206; any other Range (malformed, several ranges, outside the
 *   object) answers 416 with `Content-Range: bytes * /size`.
 * - `HEAD /objects/{id}` — the same headers, no body.
 * - Metadata travels in `x-anyserve-object` (JSON: id, size, contentType, created, ttl, owner, url).
 * - With a token configured, `Authorization: Bearer <key>` is required (compared in constant
 *   time), where the key is the replicas' peer key (derived from the token: what other replicas
 *   send, util/auth.ts `peerKeyOf`) or the token itself (an operator); without it 401.
 * - The id is taken from the raw path and never decoded: anything but `^[A-Za-z0-9_-]{1,128}$`
 *   (`..`, `%2e%2e%2f`, `%252e`, `..\`, `/etc/passwd`, `a%00b`) is 400 `OBJECT_REF_INVALID`.
 *   Only local objects are served; the endpoint never fetches from another replica (no chains).
 *
 * @example
 * ```ts
 * const server = createServer(withObjectEndpoint(rest.listener, { store, token }));
 * // curl -H 'Authorization: Bearer s3cret' -H 'Range: bytes=0-1023' http://replica:8001/objects/obj-…
 * ```
 */
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { AnyServeError } from "../errors.js";
import { sendError } from "../util/http.js";
import type { ByteRange } from "./backends/base.js";
import { checkId } from "./ref.js";
import type { ObjectStore } from "./store.js";
import { peerKeyOf, TokenSet } from "../util/auth.js";

export const OBJECTS_PATH = "/objects/";

export interface ObjectEndpointOptions {
  store: ObjectStore;
  /** Bearer token required from callers (default: the store's token). */
  token?: string | undefined;
}

/** Wraps a request listener: `/objects/…` is answered here, everything else goes on to `next`. */
export function withObjectEndpoint(next: RequestListener, o: ObjectEndpointOptions): RequestListener {
  const handle = objectEndpoint(o);
  return (req, res) => {
    if (!handle(req, res)) next(req, res);
  };
}

/** A handler that answers `/objects/…` requests and returns true, or returns false for any other path. */
export function objectEndpoint(o: ObjectEndpointOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const token = o.token ?? o.store.token;
  const want = token ? new TokenSet([token, peerKeyOf(token)]) : undefined;
  return (req, res) => {
    const raw = req.url ?? "";
    if (!raw.startsWith(OBJECTS_PATH)) return false;
    serve(req, res, raw, o.store, want).catch((err: unknown) => {
      const e = AnyServeError.from(err, "INTERNAL");
      const extra: Record<string, string> = {};
      if (e.code === "UNAUTHENTICATED") extra["www-authenticate"] = 'Bearer realm="anyserve-objects"';
      const size = (e.data as { size?: number } | undefined)?.size;
      if (e.code === "OBJECT_RANGE_INVALID" && size !== undefined) extra["content-range"] = `bytes */${size}`;
      sendError(res, e, extra);
    });
    return true;
  };
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  raw: string,
  store: ObjectStore,
  want: TokenSet | undefined,
): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    sendError(res, new AnyServeError("METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${OBJECTS_PATH}{id}: use GET or HEAD`), {
      allow: "GET, HEAD",
    });
    return;
  }
  if (want && !want.accepts(req.headers.authorization)) {
    throw new AnyServeError(
      "UNAUTHENTICATED",
      "the object endpoint needs 'Authorization: Bearer <key>' with the replicas' peer key or token",
      {
        presented: req.headers.authorization !== undefined,
      },
    );
  }
  const q = raw.indexOf("?");
  const id = checkId(raw.slice(OBJECTS_PATH.length, q < 0 ? undefined : q));
  const obj = await store.openLocal(id);
  const { info } = obj;
  let range: ByteRange | undefined;
  try {
    range = parseRange(req.headers.range, info.size);
  } catch (err) {
    await obj.close();
    throw err;
  }
  const headers: Record<string, string | number> = {
    "content-type": info.contentType,
    "content-length": range ? range.end - range.start + 1 : info.size,
    "accept-ranges": "bytes",
    etag: `"${info.id}-${info.created}-${info.size}"`,
    "cache-control": "no-store",
    "x-anyserve-object": JSON.stringify(info),
  };
  if (range) headers["content-range"] = `bytes ${range.start}-${range.end}/${info.size}`;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === "HEAD") {
    await obj.close();
    res.end();
    return;
  }
  // A client that goes away makes pipeline fail; the file stream is destroyed (its handle closed) either way.
  await pipeline(obj.stream(range), res).catch(() => res.destroy());
}

/**
 * One `bytes=` range, or undefined for no Range header. RFC 9110 lets a server ignore a Range it
 * does not understand; we answer 416 instead so a caller never mistakes the whole object for a part.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d{0,16})-(\d{0,16})$/.exec(header.trim());
  const bad = (): never => {
    throw new AnyServeError(
      "OBJECT_RANGE_INVALID",
      `Range ${JSON.stringify(header.slice(0, 64))} is not one satisfiable 'bytes=' range of this ${size}-byte object`,
      { size },
    );
  };
  if (!m || (m[1] === "" && m[2] === "")) return bad();
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return bad();
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return bad();
  return { start, end };
}

/** Tokens are compared as SHA-256 digests, so the comparison takes the same time whatever their lengths. */
