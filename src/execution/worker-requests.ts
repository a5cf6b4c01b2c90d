/**
 * What a worker process asks its replica for (docs/worker-protocol.md "Requests from the worker"):
 * CALL — `ctx.call` made by the replica with its own caller (its tokens, its route table, its API
 * servers), bound to the job's abort — CALL_STREAM — `ctx.callStream`, the same for a streaming
 * call, whose chunks are relayed within a window the worker's CALL_CREDITs reopen — and FETCH — an
 * object owned by another replica, read through the replica's object store. Python workers and
 * Node worker processes use them: a worker process holds no secret (process-handle.ts), so what
 * needs one goes through the replica.
 */
import { AnyServeError } from "../errors.js";
import type { ObjectStoreApi } from "../objects/types.js";
import { normalizeCapability } from "../protocol/capability.js";
import { decodeRequest } from "../protocol/codec.js";
import { encodeJsonResponse } from "../protocol/json-codec.js";
import type { InferRequest } from "../protocol/types.js";
import { answerMeta } from "../transport/call-meta.js";
import { chunkCost } from "../transport/frames.js";
import { toAbortSignal, type CancelSignal } from "../util/cancel.js";
import { Gate } from "../util/gate.js";
import type { ExecutionOptions } from "./base.js";
import type { WorkerHandle } from "./handle.js";
import { errorMetaOf, Msg, WORKER_STREAM_WINDOW_BYTES, type Meta } from "./worker-protocol.js";

/** Answers a worker's CALL or CALL_STREAM (through the replica's caller) or FETCH (through its object store). */
export function serveWorkerRequest(
  o: ExecutionOptions,
  handle: WorkerHandle,
  type: number,
  id: number,
  meta: Meta,
  body: Buffer,
  signal: CancelSignal | undefined,
): void {
  switch (type) {
    case Msg.CALL_STREAM:
      void relayStream(o, handle, id, meta, body, signal);
      return;
    case Msg.CALL_CREDIT: {
      const n = meta?.n;
      if (typeof n === "number" && n > 0) relaysOf(handle).get(id)?.credit(n);
      return;
    }
    case Msg.CALL_CANCEL:
      relaysOf(handle).get(id)?.cancel();
      return;
  }
  if (type !== Msg.CALL && type !== Msg.FETCH) return;
  const reply = type === Msg.CALL ? Msg.CALL_RESULT : Msg.FETCHED;
  const work = type === Msg.CALL ? call(o, meta, body, signal) : fetchObject(o.env.objects, meta);
  work.then(
    (out) => handle.send(reply, id, out.meta, out.body),
    (err: unknown) => handle.send(reply, id, errorMetaOf(err)),
  );
}

async function call(
  o: ExecutionOptions,
  meta: Meta,
  body: Buffer,
  signal: CancelSignal | undefined,
): Promise<{ meta: Meta; body: Buffer }> {
  const caller = o.env.caller;
  if (!caller?.callRaw) throw new AnyServeError("INTERNAL", "cross-replica call not available: the replica has no --api-server");
  if (signal?.aborted) throw AnyServeError.from(signal.reason, "CANCELLED");
  const { q, req, options } = callOf(meta, body);
  const res = await caller.callRaw(q, req, { ...options, ...(signal ? { signal: toAbortSignal(signal) } : {}) });
  return encoded(res);
}

/** Every output in the binary part: exact for every datatype, no UTF-8 requirement on BYTES. */
function encoded(res: Parameters<typeof encodeJsonResponse>[0]): { meta: Meta; body: Buffer } {
  const out = encodeJsonResponse(res, { all: true });
  return { meta: answerMeta(out), body: out.body };
}

/** A CALL's or CALL_STREAM's capability, request and options, as its meta and body give them. */
function callOf(
  meta: Meta,
  body: Buffer,
): { q: ReturnType<typeof normalizeCapability>; req: InferRequest; options: { timeout: number; affinity?: string } } {
  const req = decodeRequest(body, {
    contentType: typeof meta?.ct === "string" ? meta.ct : undefined,
    headerLength: typeof meta?.hl === "number" ? meta.hl : undefined,
  });
  // Whole milliseconds (timers take integers), at least one.
  const timeout = typeof meta?.timeout === "number" && meta.timeout > 0 ? Math.max(1, Math.floor(meta.timeout)) : 60_000;
  return {
    q: normalizeCapability(meta?.q as Record<string, string>, "capability"),
    req,
    options: { timeout, ...(typeof meta?.aff === "string" ? { affinity: meta.aff } : {}) },
  };
}

/**
 * One CALL_STREAM being relayed: the upstream call's abort (the worker's CALL_CANCEL, the job's
 * abort, the worker's end) and its window — what was sent minus what CALL_CREDIT gave back.
 */
class Relay {
  readonly abort = new AbortController();
  readonly room = new Gate();
  window: number;

  constructor(readonly size: number) {
    this.window = size;
  }

  /** Never beyond the window's size, whatever a worker grants: what the replica holds stays bounded. */
  credit(n: number): void {
    this.window = Math.min(this.size, this.window + n);
    if (this.window > 0) this.room.open();
  }

  cancel(reason: unknown = new AnyServeError("CANCELLED", "the worker stopped reading the stream")): void {
    this.abort.abort(reason);
    this.room.open();
  }
}

/** The streams being relayed to each worker, by the worker's CALL_STREAM id. */
const relays = new WeakMap<WorkerHandle, Map<number, Relay>>();

/** CALL_STREAMs of `handle`'s worker being relayed now (leak checks). */
export function openRelays(handle: WorkerHandle): number {
  return relays.get(handle)?.size ?? 0;
}

function relaysOf(handle: WorkerHandle): Map<number, Relay> {
  let m = relays.get(handle);
  if (m === undefined) relays.set(handle, (m = new Map()));
  return m;
}

/**
 * A CALL_STREAM: the replica's caller streams the call, bound to the job's abort and the worker's
 * life; each chunk goes to the worker as CALL_CHUNK while the worker's window has room — while
 * it has none, the upstream stream is not pulled (its own hop's window then holds its producer
 * back), so a handler that reads slowly costs the replica one window, not the whole stream. One
 * CALL_END ends it: `{}`, or the error (a catalogue code) the call failed with.
 */
async function relayStream(
  o: ExecutionOptions,
  handle: WorkerHandle,
  id: number,
  meta: Meta,
  body: Buffer,
  signal: CancelSignal | undefined,
): Promise<void> {
  const open = relaysOf(handle);
  // The worker's window, up to the replica's own (a worker does not decide how much the replica buffers).
  const w = typeof meta?.w === "number" && meta.w > 0 ? Math.min(meta.w, WORKER_STREAM_WINDOW_BYTES) : WORKER_STREAM_WINDOW_BYTES;
  const relay = new Relay(w);
  const onJobAbort = (): void => relay.cancel(AnyServeError.from(signal?.reason, "CANCELLED"));
  const onGone = (): void => relay.cancel(new AnyServeError("CANCELLED", `worker ${handle.name} ended`));
  open.set(id, relay);
  signal?.addEventListener("abort", onJobAbort);
  handle.ended?.addEventListener("abort", onGone);
  let end: Meta = {};
  try {
    const caller = o.env.caller;
    if (!caller?.callStreamRaw) throw new AnyServeError("INTERNAL", "cross-replica call not available: the replica has no --api-server");
    if (signal?.aborted) throw AnyServeError.from(signal.reason, "CANCELLED");
    if (handle.ended?.aborted) throw new AnyServeError("CANCELLED", `worker ${handle.name} ended`);
    const { q, req, options } = callOf(meta, body);
    // A worker encodes its calls asking for binary outputs (exact, as CALL answers); a stream
    // through an API server comes as server-sent events, JSON only. Each chunk is re-encoded
    // for the worker with every output binary anyway.
    if (req.parameters?.binary_data_output !== undefined) delete req.parameters.binary_data_output;
    const aborted = relay.abort.signal;
    for await (const res of caller.callStreamRaw(q, req, { ...options, signal: aborted })) {
      const chunk = encoded(res);
      relay.window -= chunkCost(chunk.body);
      handle.send(Msg.CALL_CHUNK, id, chunk.meta, chunk.body);
      while (relay.window <= 0 && !aborted.aborted) await relay.room.wait();
      // Leaving the loop returns the upstream iterator: its call is cancelled.
      if (aborted.aborted) throw AnyServeError.from(aborted.reason, "CANCELLED");
    }
  } catch (err) {
    end = errorMetaOf(relay.abort.signal.aborted ? AnyServeError.from(relay.abort.signal.reason, "CANCELLED") : err);
  } finally {
    open.delete(id);
    signal?.removeEventListener("abort", onJobAbort);
    handle.ended?.removeEventListener("abort", onGone);
  }
  if (!handle.ended?.aborted) handle.send(Msg.CALL_END, id, end);
}

async function fetchObject(objects: ObjectStoreApi | undefined, meta: Meta): Promise<{ meta: Meta; body: Buffer }> {
  if (!objects) throw new AnyServeError("INTERNAL", "ObjectStore not available: the replica has no object store");
  const ref = typeof meta?.ref === "string" ? meta.ref : "";
  const info = await objects.stat(ref);
  const { ref: _ref, ...plain } = info;
  if (meta?.op === "stat") return { meta: { ...plain }, body: Buffer.alloc(0) };
  return { meta: { ...plain }, body: await objects.get(ref) };
}
