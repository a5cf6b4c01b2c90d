/**
 * Messages between a strategy and its workers (threads and processes alike). Each message is
 * `(type, id, meta, body)`: a type code, a job id, a JSON object (or null) and raw bytes. Worker
 * threads receive them as arrays; child processes as frames of `transport/frames.ts` over a Unix
 * socket. docs/worker-protocol.md is the full description, written so that a worker in another
 * language can be built from it.
 *
 * Types 1–5 mean what they mean on the gateway → replica hop; 16 and up exist only here.
 */
import { AnyServeError, type WireError } from "../errors.js";
import type { EncodedBody } from "../protocol/types.js";
import { answerMeta } from "../transport/call-meta.js";
import { STREAM_WINDOW_BYTES } from "../transport/frames.js";
import type { BatchOutcome, JobMode, Task, TaskCall } from "./task.js";

/** 2: workers serve every handler of the app (RUN names its handler `h`; OPEN/CLOSE start and stop one). */
export const WORKER_PROTOCOL_VERSION = 2;

export const Msg = {
  /** → worker: run a job of handler `h`. meta `{h, mode, calls, sizes, w?}`, body = the task bodies one after another. */
  RUN: 1,
  /** ← worker: a job's answer. meta `{ct, hl?}` (none for JSON), `{items}` (batch) or `{code, error}`. */
  RESULT: 2,
  /** ← worker: one streamed item. meta `{ct, hl?}` (none for JSON). */
  CHUNK: 3,
  /** ← worker: a stream's end. meta `{}` or `{code, error}`. */
  END: 4,
  /** → worker: abort a job (meta null) or one item of a batch (meta `{i}`). */
  CANCEL: 5,
  /** ← worker, first message: meta `{worker, key, pid, protocol}`. */
  HELLO: 16,
  /** ← worker: the app loaded; it takes OPEN (and then jobs of the handlers it opened). */
  READY: 17,
  /** ← worker: it could not start. meta `{code, error}`; it exits next. */
  BOOT_FAILED: 18,
  /** → worker: finish the jobs it has, run `onStop` of every handler it opened, answer STOPPED and exit. */
  STOP: 19,
  /** ← worker: `onStop` ran. */
  STOPPED: 20,
  /** ← worker: the request's `timeout` parameter lowered a task's deadline. meta `{i, dl}`. */
  DEADLINE: 21,
  /**
   * → worker: the consumer of stream job `id` took `n` more bytes of its CHUNKs (meta `{n}`). A
   * stream's RUN gives a window `w` (bytes, counted with transport/frames.ts `chunkCost`); the
   * worker sends CHUNKs while what it sent minus what came back is under `w`, then waits, so a
   * client that stops reading stops the handler (its generator is not pulled) a window later.
   */
  CREDIT: 22,
  /** → worker: start handler `h` (run its `onStart`), after the jobs sent before. meta `{h}`. */
  OPEN: 24,
  /** ← worker: handler `h` started. meta `{h}`, or `{h, code, error}` when its `onStart` failed. */
  OPENED: 25,
  /** → worker: stop handler `h` (run its `onStop`) after the jobs sent before. meta `{h}`. */
  CLOSE: 26,
  /** ← worker: handler `h`'s `onStop` ran. meta `{h}`. */
  CLOSED: 27,
  /** ← worker: call a capability through the replica's router (`ctx.call` of a Python worker). id: the worker's own; meta `{job, q, timeout, ct, hl?}`. */
  CALL: 32,
  /** → worker: a CALL's answer. meta `{ct, hl?}` or an error. */
  CALL_RESULT: 33,
  /**
   * ← worker: read an object through the replica (owned by another replica: the replica has the
   * token). meta `{ref, op, job?}`: op `get` (the whole object) and `stat` are answered by FETCHED;
   * `range` `{offset, length}` by FETCHED with those bytes only; `stream` `{offset?, length?, w}` by
   * FETCH_CHUNKs within the window `w` (bytes, `chunkCost`) and one FETCH_END.
   */
  FETCH: 34,
  /** → worker: a FETCH's answer (`get`, `stat`, `range`). meta: the object's info, or an error; body: its bytes (`get`, `range`). */
  FETCHED: 35,
  /**
   * ← worker: a streaming call through the replica (`ctx.callStream`, Python `ctx.call_stream`).
   * id: the worker's own; meta `{job, q, timeout, ct, hl?, aff?, w}`: a CALL's, and the window `w`
   * (bytes, `chunkCost`) of CALL_CHUNKs the replica may send before CALL_CREDIT gives some back.
   */
  CALL_STREAM: 36,
  /** → worker: one chunk of a CALL_STREAM. meta `{ct, hl?}`, body: the encoded response. */
  CALL_CHUNK: 37,
  /** → worker: a CALL_STREAM's end. meta `{}` or an error. Exactly one per CALL_STREAM. */
  CALL_END: 38,
  /** ← worker: the handler took `n` more bytes of a CALL_STREAM's chunks. meta `{n}`. */
  CALL_CREDIT: 39,
  /** ← worker: the handler stopped reading a CALL_STREAM (or its job ended): cancel the upstream call. meta null. */
  CALL_CANCEL: 40,
  /** → worker: bytes of a stream FETCH, in order. meta: the first chunk's is the object's info and `{offset, length}` of what follows; then null. */
  FETCH_CHUNK: 41,
  /** → worker: a stream FETCH's end. meta `{}` or an error. Exactly one per stream FETCH. */
  FETCH_END: 42,
  /** ← worker: the handler took `n` more bytes of a stream FETCH's chunks. meta `{n}`. */
  FETCH_CREDIT: 43,
  /** ← worker: the handler stopped reading a stream FETCH (or its job ended): stop reading the object. meta null. */
  FETCH_CANCEL: 44,
} as const;

export type Meta = Record<string, unknown> | null;

/** Sends one message; a transport may coalesce the messages of one event-loop turn. */
export type SendFn = (type: number, id: number, meta: Meta, body?: Buffer) => void;

const EMPTY = Buffer.alloc(0);

/** The window of a stream job's CHUNKs (see {@link Msg.CREDIT}): the framed hop's. */
export const WORKER_STREAM_WINDOW_BYTES = STREAM_WINDOW_BYTES;

/** The RUN message of a job of handler `h`: one body, or a batch's bodies concatenated (one copy, batches are small requests). */
export function runMessage(h: number, mode: JobMode, tasks: readonly Task[]): { meta: Meta; body: Buffer } {
  const meta: Meta = { h, mode, calls: tasks.map((t) => t.call), sizes: tasks.map((t) => t.body.length) };
  if (mode === "stream") meta.w = WORKER_STREAM_WINDOW_BYTES;
  return { meta, body: tasks.length === 1 ? tasks[0]!.body : Buffer.concat(tasks.map((t) => t.body)) };
}

/**
 * Splits a RUN message back into its handler and tasks (views into `body`, no copy); `window` is a
 * stream's flow-control window (Infinity when the RUN gave none: a replica without flow control).
 */
export function tasksOf(meta: Meta, body: Buffer): { h: number; mode: JobMode; tasks: Task[]; window: number } {
  const m = meta as { h?: unknown; mode?: unknown; calls?: unknown; sizes?: unknown; w?: unknown } | null;
  if (
    !m ||
    !isHandlerIndex(m.h) ||
    (m.mode !== "infer" && m.mode !== "stream" && m.mode !== "batch") ||
    !Array.isArray(m.calls) ||
    !Array.isArray(m.sizes) ||
    m.calls.length !== m.sizes.length
  ) {
    throw new AnyServeError("INTERNAL", "worker protocol: RUN meta needs a handler index h, and mode, calls and sizes of equal length");
  }
  const tasks: Task[] = [];
  let off = 0;
  m.calls.forEach((call, i) => {
    const n = Number((m.sizes as unknown[])[i]);
    tasks.push({ call: call as TaskCall, body: body.subarray(off, off + n) });
    off += n;
  });
  const window = typeof m.w === "number" && m.w > 0 ? m.w : Number.POSITIVE_INFINITY;
  return { h: m.h, mode: m.mode, tasks, window };
}

/** The handler index an OPEN, OPENED, CLOSE or CLOSED meta names, or undefined. */
export function handlerOf(meta: Meta): number | undefined {
  return isHandlerIndex(meta?.h) ? meta.h : undefined;
}

function isHandlerIndex(h: unknown): h is number {
  return typeof h === "number" && Number.isInteger(h) && h >= 0;
}

export function errorMetaOf(err: unknown): Record<string, unknown> {
  const w = AnyServeError.from(err).toWire();
  return w.data === undefined ? { code: w.code, error: w.message } : { code: w.code, error: w.message, data: w.data };
}

/** The error a RESULT/END/BOOT_FAILED meta carries, if any. */
export function errorOf(meta: Meta): AnyServeError | undefined {
  if (!meta || typeof meta.code !== "string") return undefined;
  const data = meta.data !== null && typeof meta.data === "object" ? (meta.data as Record<string, unknown>) : undefined;
  return AnyServeError.fromWire({
    code: meta.code as WireError["code"],
    message: String(meta.error ?? meta.code),
    ...(data ? { data } : {}),
  });
}

export function encodedOf(meta: Meta, body: Buffer): EncodedBody {
  const out: EncodedBody = { body, contentType: typeof meta?.ct === "string" ? meta.ct : "application/json" };
  if (typeof meta?.hl === "number") out.headerLength = meta.hl;
  return out;
}

/** A batch's RESULT: `{items: [{ct?, hl?, n} | {code, error}]}` and the answers' bodies concatenated. */
export function batchResultMessage(outcomes: readonly BatchOutcome[]): { meta: Meta; body: Buffer } {
  const bodies: Buffer[] = [];
  const items = outcomes.map((o) => {
    if (!o.ok)
      return o.error.data === undefined
        ? { code: o.error.code, error: o.error.message }
        : { code: o.error.code, error: o.error.message, data: o.error.data };
    bodies.push(o.value.body);
    return { ...answerMeta(o.value), n: o.value.body.length };
  });
  return { meta: { items }, body: bodies.length === 0 ? EMPTY : Buffer.concat(bodies) };
}

export function batchOutcomesOf(meta: Meta, body: Buffer): BatchOutcome[] {
  const items = (meta as { items?: unknown } | null)?.items;
  if (!Array.isArray(items)) throw new AnyServeError("INTERNAL", "worker protocol: a batch RESULT needs items");
  let off = 0;
  return items.map((item: Record<string, unknown>) => {
    const err = errorOf(item);
    if (err) return { ok: false, error: err.toWire() };
    const n = Number(item.n);
    const value = encodedOf(item, body.subarray(off, off + n));
    off += n;
    return { ok: true, value };
  });
}
