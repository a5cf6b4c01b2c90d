/**
 * The replica's side of a worker's FETCH (docs/worker-protocol.md): an object the worker cannot
 * reach itself (owned by another replica, not in the shared directory), read with the replica's
 * object store — its peers, its token, its cache — bound to the job's abort.
 *
 * - `stat`, `get` (the whole object) and `range` (`{offset, length}`: only those bytes are read,
 *   from the owner too) are answered by one FETCHED, so at most one frame's worth.
 * - `stream` (`{offset?, length?, w}`) is relayed as FETCH_CHUNKs within the worker's window
 *   (worker-relay.ts): the object is read from its owner as the worker's handler takes it, so a
 *   handler that reads 100 bytes of a 1 GB object, or stops reading, costs a window, not the object.
 */
import { AnyServeError } from "../errors.js";
import { spanRange } from "../objects/info.js";
import type { ObjectInfo, ObjectStoreApi } from "../objects/types.js";
import { DEFAULT_MAX_FRAME_BYTES } from "../transport/frames.js";
import type { CancelSignal } from "../util/cancel.js";
import type { WorkerHandle } from "./handle.js";
import type { Meta } from "./worker-protocol.js";
import { FETCH_RELAY, relay, windowOf } from "./worker-relay.js";

/** The most bytes one FETCHED carries (a frame, less room for its meta): more is read as a stream. */
export const MAX_FETCHED_BYTES = DEFAULT_MAX_FRAME_BYTES - 64 * 1024;

/** The largest FETCH_CHUNK body: a piece of the owner's bytes, so a window holds several. */
const MAX_PIECE_BYTES = 64 * 1024;

/** Answers FETCH `stat`, `get` or `range` with its FETCHED's meta (the object's info) and body. */
export async function fetchObject(
  objects: ObjectStoreApi | undefined,
  meta: Meta,
  signal: AbortSignal | undefined,
): Promise<{ meta: Meta; body: Buffer }> {
  const { store, ref, info } = await located(objects, meta, signal);
  const plain = plainInfo(info);
  switch (meta?.op) {
    case "stat":
      return { meta: plain, body: Buffer.alloc(0) };
    case "get":
      fitsOneAnswer(info, info.size);
      return { meta: plain, body: await store.get(ref, { ...(signal ? { signal } : {}) }) };
    case "range": {
      const range = spanRange(meta.offset, meta.length, info);
      fitsOneAnswer(info, range.end - range.start + 1);
      return { meta: plain, body: await store.get(ref, { range, ...(signal ? { signal } : {}) }) };
    }
    default:
      throw new AnyServeError(
        "INVALID_PARAMETER",
        `FETCH op: expected "stat", "get", "range" or "stream", got ${JSON.stringify(meta?.op)}`,
      );
  }
}

/**
 * FETCH `stream`: the object's bytes (or `{offset, length}`'s) as FETCH_CHUNKs of at most
 * MAX_PIECE_BYTES (and half the window), the first carrying the object's info and the span that
 * follows (an empty first chunk for an empty object); then one FETCH_END.
 */
export function relayFetch(
  objects: ObjectStoreApi | undefined,
  handle: WorkerHandle,
  id: number,
  meta: Meta,
  signal: CancelSignal | undefined,
): Promise<void> {
  const size = windowOf(meta);
  return relay(handle, FETCH_RELAY, id, size, signal, async function* (r) {
    const aborted = r.abort.signal;
    const { store, ref, info } = await located(objects, meta, aborted);
    const whole = meta?.offset === undefined && meta?.length === undefined;
    const range = whole ? undefined : spanRange(meta?.offset, meta?.length, info);
    const start = range?.start ?? 0;
    const length = range ? range.end - range.start + 1 : info.size;
    // Pieces of at most half the window less a chunk's overhead: the window then bounds what is in flight.
    const piece = Math.max(1, Math.min(MAX_PIECE_BYTES, Math.floor(size / 2) - 64));
    let first: Meta = { ...plainInfo(info), offset: start, length };
    // The first chunk always comes, empty for an empty object: it tells the worker what follows.
    if (length === 0) {
      yield { meta: first, body: Buffer.alloc(0) };
      return;
    }
    const bytes = await store.getStream(ref, { signal: aborted, ...(range ? { range } : {}) });
    try {
      for await (const chunk of bytes as AsyncIterable<Buffer>) {
        for (let at = 0; at < chunk.length; at += piece) {
          yield { meta: first, body: chunk.subarray(at, at + piece) };
          first = null;
        }
      }
    } finally {
      bytes.destroy(); // left early (cancelled): the read from the owner stops
    }
  });
}

/** The store, the ref and its info (which also says it exists): every op starts there. */
async function located(
  objects: ObjectStoreApi | undefined,
  meta: Meta,
  signal: AbortSignal | undefined,
): Promise<{ store: ObjectStoreApi; ref: string; info: ObjectInfo }> {
  if (!objects) throw new AnyServeError("INTERNAL", "ObjectStore not available: the replica has no object store");
  const ref = typeof meta?.ref === "string" ? meta.ref : "";
  return { store: objects, ref, info: await objects.stat(ref, signal ? { signal } : {}) };
}

/** The object's info as FETCHED and FETCH_CHUNK carry it: an ObjectInfo without the ref. */
function plainInfo(info: ObjectInfo): Record<string, unknown> {
  const { ref: _ref, ...plain } = info;
  return { ...plain };
}

function fitsOneAnswer(info: ObjectInfo, n: number): void {
  if (n > MAX_FETCHED_BYTES) {
    throw new AnyServeError(
      "OBJECT_TOO_LARGE",
      `object ${info.id}: ${n} bytes asked for in one FETCHED, which carries at most ${MAX_FETCHED_BYTES}: read it with FETCH op "stream"`,
    );
  }
}
