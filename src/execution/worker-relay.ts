/**
 * The replica's side of a stream a worker process asked for — a streaming call (CALL_STREAM) or an
 * object read as a stream (FETCH op `stream`): each chunk goes to the worker while its window has
 * room, and the source is not pulled while it has none, so a handler that reads slowly costs the
 * replica one window, not the whole stream. The worker's credits reopen the window; its cancel,
 * the job's abort and the worker's end stop the source. Exactly one end message closes it.
 * worker-requests.ts (calls) and worker-fetch.ts (objects) relay through here.
 */
import { AnyServeError } from "../errors.js";
import { chunkCost } from "../transport/frames.js";
import type { CancelSignal } from "../util/cancel.js";
import { Gate } from "../util/gate.js";
import type { WorkerHandle } from "./handle.js";
import { errorMetaOf, Msg, WORKER_STREAM_WINDOW_BYTES, type Meta } from "./worker-protocol.js";

/** What a relayed stream is made of: its chunk and end messages, and its name in errors. */
export interface RelayKind {
  readonly chunk: number;
  readonly end: number;
  readonly what: string;
}

export const CALL_RELAY: RelayKind = { chunk: Msg.CALL_CHUNK, end: Msg.CALL_END, what: "CALL_STREAM" };
export const FETCH_RELAY: RelayKind = { chunk: Msg.FETCH_CHUNK, end: Msg.FETCH_END, what: "stream FETCH" };

/** The smallest window a worker may ask for: below it chunks would be split into slivers. */
const MIN_WINDOW_BYTES = 4096;

/** One stream being relayed: the source's abort and the window — what was sent minus what credits gave back. */
export class Relay {
  readonly abort = new AbortController();
  readonly room = new Gate();
  window: number;

  constructor(readonly size: number) {
    this.window = size;
  }

  /** Never beyond the window's size, whatever a worker grants: what the replica holds stays bounded. */
  credit(n: number): void {
    this.window = Math.min(this.size, this.window + n);
    this.room.open();
  }

  cancel(reason: unknown = new AnyServeError("CANCELLED", "the worker stopped reading the stream")): void {
    this.abort.abort(reason);
    this.room.open();
  }

  /**
   * Waits until a chunk of `cost` fits: while the window has less room than the chunk costs (or
   * than half the window, for a chunk bigger than that — the worker credits by half windows, so
   * it must be able to take that much). Chunks of at most half a window thus keep what is in
   * flight within the window.
   */
  async fit(cost: number): Promise<void> {
    const need = Math.min(cost, this.size / 2);
    while (this.window < need && !this.abort.signal.aborted) await this.room.wait();
  }
}

/** The streams being relayed to each worker, by kind and the worker's id. */
const relays = new WeakMap<WorkerHandle, Map<RelayKind, Map<number, Relay>>>();

/** Streams of `handle`'s worker being relayed now, of every kind (leak checks). */
export function openRelays(handle: WorkerHandle): number {
  let n = 0;
  for (const m of relays.get(handle)?.values() ?? []) n += m.size;
  return n;
}

function relaysOf(handle: WorkerHandle, kind: RelayKind): Map<number, Relay> {
  let byKind = relays.get(handle);
  if (byKind === undefined) relays.set(handle, (byKind = new Map()));
  let m = byKind.get(kind);
  if (m === undefined) byKind.set(kind, (m = new Map()));
  return m;
}

/** The worker's CALL_CREDIT / FETCH_CREDIT `{n}` for stream `id`. */
export function creditRelay(handle: WorkerHandle, kind: RelayKind, id: number, meta: Meta): void {
  const n = meta?.n;
  if (typeof n === "number" && n > 0) relaysOf(handle, kind).get(id)?.credit(n);
}

/** The worker's CALL_CANCEL / FETCH_CANCEL for stream `id`. */
export function cancelRelay(handle: WorkerHandle, kind: RelayKind, id: number): void {
  relaysOf(handle, kind).get(id)?.cancel();
}

/** The window a worker asked for (`w`), within the replica's own: a worker does not decide how much the replica buffers. */
export function windowOf(meta: Meta): number {
  const w = meta?.w;
  return typeof w === "number" && w > 0 ? Math.max(MIN_WINDOW_BYTES, Math.min(w, WORKER_STREAM_WINDOW_BYTES)) : WORKER_STREAM_WINDOW_BYTES;
}

/**
 * Relays `source` to the worker as stream `id` of `kind`, bound to the job's abort (`signal`) and
 * the worker's life. The source gets the relay (its abort signal, its window size) and yields the
 * chunks; leaving its loop returns its iterator, which stops whatever it reads. An id still open
 * is refused with an end naming it, and the open stream goes on untouched.
 */
export async function relay(
  handle: WorkerHandle,
  kind: RelayKind,
  id: number,
  size: number,
  signal: CancelSignal | undefined,
  source: (r: Relay) => AsyncIterable<{ meta: Meta; body: Buffer }>,
): Promise<void> {
  const open = relaysOf(handle, kind);
  if (open.has(id)) {
    const err = new AnyServeError(
      "INTERNAL",
      `worker protocol: ${kind.what} id ${id} is still open on worker ${handle.name}: an open stream's id cannot be reused`,
    );
    handle.send(kind.end, id, errorMetaOf(err));
    return;
  }
  const r = new Relay(size);
  const onJobAbort = (): void => r.cancel(AnyServeError.from(signal?.reason, "CANCELLED"));
  const onGone = (): void => r.cancel(new AnyServeError("CANCELLED", `worker ${handle.name} ended`));
  open.set(id, r);
  signal?.addEventListener("abort", onJobAbort);
  handle.ended?.addEventListener("abort", onGone);
  let end: Meta = {};
  const aborted = r.abort.signal;
  try {
    if (signal?.aborted) throw AnyServeError.from(signal.reason, "CANCELLED");
    if (handle.ended?.aborted) throw new AnyServeError("CANCELLED", `worker ${handle.name} ended`);
    for await (const chunk of source(r)) {
      const cost = chunkCost(chunk.body);
      await r.fit(cost);
      // Leaving the loop returns the source's iterator: its call or read is stopped.
      if (aborted.aborted) throw AnyServeError.from(aborted.reason, "CANCELLED");
      r.window -= cost;
      handle.send(kind.chunk, id, chunk.meta, chunk.body);
    }
  } catch (err) {
    end = errorMetaOf(aborted.aborted ? AnyServeError.from(aborted.reason, "CANCELLED") : err);
  } finally {
    open.delete(id);
    signal?.removeEventListener("abort", onJobAbort);
    handle.ended?.removeEventListener("abort", onGone);
  }
  if (!handle.ended?.aborted) handle.send(kind.end, id, end);
}
