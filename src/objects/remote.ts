/**
 * Reading an object from the replica that owns it, over that replica's object endpoint
 * (`GET|HEAD <url>/objects/<id>`), streaming, under a deadline.
 *
 * Which URL to call is decided by a {@link PeerResolver}, never by the ref alone: a ref can come
 * from a client, and fetching whatever URL it names would send our bearer token to that host.
 * The replica resolves owners through the API server's registry; a standalone store trusts only
 * the origins it is given.
 */
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { request, type Dispatcher } from "undici";
import { AnyServeError, isErrorCode } from "../errors.js";
import type { StoredObject } from "./backends/base.js";
import { checkContentType, checkId, checkOwnerUrl } from "./ref.js";
import { peerKeyOf } from "../util/auth.js";
import { ApiServers } from "../util/api-servers.js";

/** Maps an owner replica id (and the URL its ref suggests) to the base URL to fetch from, or undefined: not trusted. */
export type PeerResolver = (owner: string, hint: string | undefined) => Promise<string | undefined> | string | undefined;

/** Trusts a ref's URL only when its origin is one of `origins`. */
export function allowListPeers(origins: readonly string[]): PeerResolver {
  const allowed = new Set(origins.map((o) => checkOwnerUrl(o)));
  return (_owner, hint) => (hint !== undefined && allowed.has(hint) ? hint : undefined);
}

/**
 * Looks owners up in the API server's registry (`GET /registry`, cached for `cacheMs`); the ref's
 * URL is ignored, so only registered replicas are ever called. With several API servers, the
 * current one is asked, and the next when it is gone or not ready (util/api-servers.ts: a read,
 * so it is asked again after any failure before the answer).
 */
export function registryPeers(apiServer: string | readonly string[] | ApiServers, cacheMs = 2_000, token?: string): PeerResolver {
  const servers = apiServer instanceof ApiServers ? apiServer : new ApiServers(apiServer);
  // The registry is behind the read scope: the control-plane token reads it (sent to the API server only).
  const headers = token ? { authorization: `Bearer ${token}` } : undefined;
  let known = new Map<string, string>();
  let at = 0;
  let loading: Promise<void> | undefined;
  const get = async (url: string, ms: number): Promise<Dispatcher.ResponseData> => {
    const res = await request(`${url.replace(/\/$/, "")}/registry`, { headers, headersTimeout: ms, bodyTimeout: ms });
    if (res.statusCode === 200) return res;
    throw registryError(res.statusCode, await res.body.text().catch(() => ""), url);
  };
  const load = (): Promise<void> =>
    (loading ??= (async () => {
      try {
        const res = await servers.call(get, { timeoutMs: 5_000, replayable: true });
        const body = (await res.body.json()) as { replicas?: { replica_id?: unknown; http_endpoint?: unknown }[] };
        const next = new Map<string, string>();
        for (const r of body.replicas ?? []) {
          if (typeof r.replica_id === "string" && typeof r.http_endpoint === "string") next.set(r.replica_id, r.http_endpoint);
        }
        known = next;
        at = Date.now();
      } finally {
        loading = undefined;
      }
    })());
  return async (owner) => {
    // Reload when stale, or when the owner is unknown and the list is not brand new (it may have just registered).
    if (Date.now() - at > cacheMs || (!known.has(owner) && Date.now() - at > 200)) {
      await load().catch(() => undefined);
    }
    return known.get(owner);
  };
}

/** A registry read the API server refused: its own code when it sent one (a 503 `REGISTRY_WARMING_UP` moves to the next). */
function registryError(status: number, text: string, url: string): AnyServeError {
  let code: unknown;
  try {
    ({ code } = JSON.parse(text) as { code?: unknown });
  } catch {
    code = undefined;
  }
  return new AnyServeError(
    isErrorCode(code) ? code : "OBJECT_OWNER_UNREACHABLE",
    `the API server ${url} answered ${status} to GET /registry`,
  );
}

export interface PeerRequest {
  method: "GET" | "HEAD";
  base: string;
  id: string;
  token?: string | undefined;
  signal: AbortSignal;
  range?: { start: number; end: number } | undefined;
}

export interface PeerAnswer {
  info: StoredObject;
  /** GET only: the bytes, checked to be exactly the announced length; errors carry our codes. */
  body?: Readable;
}

/** Calls an owner's object endpoint. Errors: the owner's own code when it sent one (404, 410…), else 502 `OBJECT_OWNER_UNREACHABLE`. */
export async function fetchFromPeer(p: PeerRequest): Promise<PeerAnswer> {
  const { info, res } = await ask(p);
  if (p.method === "HEAD") {
    await res.body.dump();
    return { info };
  }
  const checked = new LengthCheck(expectedLength(p, info), p.id);
  // Not stream.pipeline: it would fail `checked` with undici's raw error before we could map it.
  const body = res.body;
  body.on("error", (err) => checked.destroy(fetchError(err, p)));
  checked.on("close", () => body.destroy());
  // The caller may start reading a moment later (after an await): a cut in between must not be an
  // uncaught 'error'. Readers still get it — iterators and pipeline read `stream.errored`.
  checked.on("error", () => undefined);
  body.pipe(checked);
  return { info, body: checked };
}

/** GET of a whole object into one Buffer, straight from the socket (no stream in between). */
export async function readFromPeer(p: PeerRequest): Promise<{ info: StoredObject; bytes: Buffer }> {
  const { info, res } = await ask({ ...p, method: "GET" });
  const bytes = Buffer.allocUnsafe(expectedLength(p, info));
  let at = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (at + chunk.length > bytes.length) throw truncated(p.id, at + chunk.length, bytes.length);
      at += chunk.copy(bytes, at);
    }
  } catch (err) {
    res.body.destroy();
    throw fetchError(err, p);
  }
  if (at !== bytes.length) throw truncated(p.id, at, bytes.length);
  return { info, bytes };
}

async function ask(p: PeerRequest): Promise<{ info: StoredObject; res: Dispatcher.ResponseData }> {
  const url = `${p.base}/objects/${checkId(p.id)}`;
  const headers: Record<string, string> = {};
  // The peer key derived from the token, never the token itself: a replica's endpoint gets no control-plane credential.
  if (p.token) headers.authorization = `Bearer ${peerKeyOf(p.token)}`;
  if (p.range) headers.range = `bytes=${p.range.start}-${p.range.end}`;
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { method: p.method, headers, signal: p.signal, headersTimeout: 30_000, bodyTimeout: 30_000 });
  } catch (err) {
    throw fetchError(err, p);
  }
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    const text = await res.body.text().catch(() => "");
    throw answerError(res.statusCode, text, p);
  }
  try {
    return { info: parseMetaHeader(res.headers["x-anyserve-object"], p.id), res };
  } catch (err) {
    res.body.destroy();
    throw err;
  }
}

function expectedLength(p: PeerRequest, info: StoredObject): number {
  return p.range ? p.range.end - p.range.start + 1 : info.size;
}

/** The endpoint's `x-anyserve-object` header → metadata, validated as strictly as a ref. */
export function parseMetaHeader(raw: string | string[] | undefined, id: string): StoredObject {
  let m: Partial<StoredObject> | undefined;
  try {
    m = typeof raw === "string" ? (JSON.parse(raw) as Partial<StoredObject>) : undefined;
  } catch {
    m = undefined;
  }
  if (!m || m.id !== id || !Number.isSafeInteger(m.size) || typeof m.created !== "number") {
    throw new AnyServeError("OBJECT_OWNER_UNREACHABLE", `the owner of object ${id} answered without valid object metadata`);
  }
  const info: StoredObject = { id, size: m.size!, created: m.created, contentType: checkContentType(m.contentType) };
  if (typeof m.ttl === "number") info.ttl = m.ttl;
  if (typeof m.owner === "string") info.owner = m.owner;
  if (typeof m.url === "string") info.url = checkOwnerUrl(m.url);
  return info;
}

/** Passes bytes through and fails unless exactly `expected` arrive, so a cut transfer is never taken for a whole object. */
class LengthCheck extends Transform {
  #seen = 0;
  constructor(
    readonly expected: number,
    readonly id: string,
  ) {
    // Large buffers: with the 16 KiB default, every 64 KiB socket chunk pauses the socket and the
    // transfer runs at a fraction of loopback speed.
    super({ highWaterMark: 4 << 20 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.expected) done(truncated(this.id, this.#seen, this.expected));
    else done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    done(this.#seen === this.expected ? null : truncated(this.id, this.#seen, this.expected));
  }
}

function truncated(id: string, got: number, want: number): AnyServeError {
  return new AnyServeError("OBJECT_OWNER_UNREACHABLE", `object ${id}: the owner sent ${got} bytes, expected ${want}`);
}

function answerError(status: number, text: string, p: PeerRequest): AnyServeError {
  let code: unknown;
  let message: unknown;
  try {
    ({ code, error: message } = JSON.parse(text) as { code?: unknown; error?: unknown });
  } catch {
    code = undefined;
  }
  if (status === 404 && p.method === "HEAD") code = "OBJECT_NOT_FOUND";
  if (status === 410 && p.method === "HEAD") code = "OBJECT_EXPIRED";
  if (isErrorCode(code) && code.startsWith("OBJECT_") && code !== "OBJECT_OWNER_UNREACHABLE") {
    return new AnyServeError(code, `owner ${p.base}: ${typeof message === "string" ? message : code}`);
  }
  const why = status === 401 ? "it refused our token" : `it answered ${status}`;
  return new AnyServeError("OBJECT_OWNER_UNREACHABLE", `fetching object ${p.id} from its owner ${p.base} failed: ${why}`);
}

function fetchError(err: unknown, p: PeerRequest): AnyServeError {
  if (err instanceof AnyServeError) return err;
  if (p.signal.aborted) {
    const reason = p.signal.reason as { name?: string } | undefined;
    return reason?.name === "TimeoutError"
      ? new AnyServeError("DEADLINE_EXCEEDED", `fetching object ${p.id} from its owner ${p.base} did not finish in time`)
      : new AnyServeError("CANCELLED", `fetching object ${p.id} from its owner ${p.base} was cancelled`);
  }
  return new AnyServeError(
    "OBJECT_OWNER_UNREACHABLE",
    `fetching object ${p.id} from its owner ${p.base} failed: ${(err as Error)?.message ?? String(err)}`,
  );
}
