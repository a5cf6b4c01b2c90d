/**
 * What a worker process asks its replica for (docs/worker-protocol.md "Requests from the worker"):
 * CALL — `ctx.call` made by the replica with its own caller (its tokens, its route table, its API
 * servers), bound to the job's abort — and FETCH — an object owned by another replica, read through
 * the replica's object store. Python workers and Node worker processes use them: a worker process
 * holds no secret (process-handle.ts), so what needs one goes through the replica.
 */
import { AnyServeError } from "../errors.js";
import type { ObjectStoreApi } from "../objects/types.js";
import { normalizeCapability } from "../protocol/capability.js";
import { decodeRequest } from "../protocol/codec.js";
import { encodeJsonResponse } from "../protocol/json-codec.js";
import { answerMeta } from "../transport/call-meta.js";
import { toAbortSignal, type CancelSignal } from "../util/cancel.js";
import type { ExecutionOptions } from "./base.js";
import type { WorkerHandle } from "./handle.js";
import { errorMetaOf, Msg, type Meta } from "./worker-protocol.js";

/** Answers a worker's CALL (through the replica's caller) or FETCH (through its object store). */
export function serveWorkerRequest(
  o: ExecutionOptions,
  handle: WorkerHandle,
  type: number,
  id: number,
  meta: Meta,
  body: Buffer,
  signal: CancelSignal | undefined,
): void {
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
  const req = decodeRequest(body, {
    contentType: typeof meta?.ct === "string" ? meta.ct : undefined,
    headerLength: typeof meta?.hl === "number" ? meta.hl : undefined,
  });
  // Whole milliseconds (timers take integers), at least one.
  const timeout = typeof meta?.timeout === "number" && meta.timeout > 0 ? Math.max(1, Math.floor(meta.timeout)) : 60_000;
  const res = await caller.callRaw(normalizeCapability(meta?.q as Record<string, string>, "capability"), req, {
    timeout,
    ...(signal ? { signal: toAbortSignal(signal) } : {}),
    ...(typeof meta?.aff === "string" ? { affinity: meta.aff } : {}),
  });
  // Every output in the binary part: exact for every datatype, no UTF-8 requirement on BYTES.
  const out = encodeJsonResponse(res, { all: true });
  return { meta: answerMeta(out), body: out.body };
}

async function fetchObject(objects: ObjectStoreApi | undefined, meta: Meta): Promise<{ meta: Meta; body: Buffer }> {
  if (!objects) throw new AnyServeError("INTERNAL", "ObjectStore not available: the replica has no object store");
  const ref = typeof meta?.ref === "string" ? meta.ref : "";
  const info = await objects.stat(ref);
  const { ref: _ref, ...plain } = info;
  if (meta?.op === "stat") return { meta: { ...plain }, body: Buffer.alloc(0) };
  return { meta: { ...plain }, body: await objects.get(ref) };
}
