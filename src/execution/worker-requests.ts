/**
 * What a worker process asks its replica for (docs/worker-protocol.md "Requests from the worker"):
 * CALL — `ctx.call` made by the replica with its own caller (its tokens, its route table, its API
 * servers), bound to the job's abort — CALL_STREAM — `ctx.callStream`, the same for a streaming
 * call, whose chunks are relayed within a window the worker's CALL_CREDITs reopen — and FETCH — an
 * object owned by another replica, read through the replica's object store (worker-fetch.ts):
 * whole, its info, a range, or a stream relayed as CALL_STREAM's chunks are. Python workers and
 * Node worker processes use them: a worker process holds no secret (process-handle.ts), so what
 * needs one goes through the replica.
 */
import { AnyServeError } from "../errors.js";
import { normalizeCapability } from "../protocol/capability.js";
import { decodeRequest } from "../protocol/codec.js";
import { encodeJsonResponse } from "../protocol/json-codec.js";
import type { InferRequest } from "../protocol/types.js";
import { answerMeta } from "../transport/call-meta.js";
import { toAbortSignal, type CancelSignal } from "../util/cancel.js";
import type { ExecutionOptions } from "./base.js";
import type { WorkerHandle } from "./handle.js";
import { fetchObject, relayFetch } from "./worker-fetch.js";
import { errorMetaOf, Msg, type Meta } from "./worker-protocol.js";
import { CALL_RELAY, cancelRelay, creditRelay, FETCH_RELAY, relay, windowOf } from "./worker-relay.js";

export { openRelays } from "./worker-relay.js";

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
      void relayCall(o, handle, id, meta, body, signal);
      return;
    case Msg.CALL_CREDIT:
      creditRelay(handle, CALL_RELAY, id, meta);
      return;
    case Msg.CALL_CANCEL:
      cancelRelay(handle, CALL_RELAY, id);
      return;
    case Msg.FETCH_CREDIT:
      creditRelay(handle, FETCH_RELAY, id, meta);
      return;
    case Msg.FETCH_CANCEL:
      cancelRelay(handle, FETCH_RELAY, id);
      return;
    case Msg.FETCH:
      if (meta?.op === "stream") void relayFetch(o.env.objects, handle, id, meta, signal);
      else answer(handle, Msg.FETCHED, id, fetchObject(o.env.objects, meta, signal ? toAbortSignal(signal) : undefined));
      return;
    case Msg.CALL:
      answer(handle, Msg.CALL_RESULT, id, call(o, meta, body, signal));
      return;
  }
}

/** Sends `work`'s outcome as the one answer `reply` to request `id`. */
function answer(handle: WorkerHandle, reply: number, id: number, work: Promise<{ meta: Meta; body: Buffer }>): void {
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
 * A CALL_STREAM: the replica's caller streams the call, bound to the job's abort and the worker's
 * life; each chunk goes to the worker as CALL_CHUNK within the worker's window (worker-relay.ts) —
 * while it has no room, the upstream stream is not pulled (its own hop's window then holds its
 * producer back). One CALL_END ends it: `{}`, or the error (a catalogue code) the call failed with.
 */
function relayCall(
  o: ExecutionOptions,
  handle: WorkerHandle,
  id: number,
  meta: Meta,
  body: Buffer,
  signal: CancelSignal | undefined,
): Promise<void> {
  return relay(handle, CALL_RELAY, id, windowOf(meta), signal, async function* (r) {
    const caller = o.env.caller;
    if (!caller?.callStreamRaw) throw new AnyServeError("INTERNAL", "cross-replica call not available: the replica has no --api-server");
    const { q, req, options } = callOf(meta, body);
    // A worker encodes its calls asking for binary outputs (exact, as CALL answers); a stream
    // through an API server comes as server-sent events, JSON only. Each chunk is re-encoded
    // for the worker with every output binary anyway.
    if (req.parameters?.binary_data_output !== undefined) delete req.parameters.binary_data_output;
    for await (const res of caller.callStreamRaw(q, req, { ...options, signal: r.abort.signal })) yield encoded(res);
  });
}
