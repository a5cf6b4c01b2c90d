/**
 * The one task runner, used by every strategy: in the replica's event loop (`single`, `async`)
 * and inside each worker thread or child process (`multi`, `pool`, `process`). Given the app, a
 * handler index and encoded calls, it decodes the requests, builds the Contexts, runs the handler
 * (or the batch handler on N requests) and encodes the answers in each caller's wire format.
 *
 * Handlers are matched by index: every worker loads the same module, so registration order is
 * the same everywhere.
 */
import { AnyServeError } from "../errors.js";
import { formatCapability } from "../protocol/capability.js";
import type { ChunkSink } from "../protocol/call.js";
import { decodeRequest, encodeResponse } from "../protocol/codec.js";
import type { EncodedBody, InferRequest, InferResponse } from "../protocol/types.js";
import { handlerResultToResponse } from "../protocol/values.js";
import type { AnyServe, BatchHandler, HandlerEntry } from "../sdk/app.js";
import { Context, type Caller, type ObjectStoreLike } from "../sdk/context.js";
import { InferenceRequest } from "../sdk/request.js";
import type { Logger } from "../util/log.js";
import type { BatchOutcome, Task, TaskCall, TaskHooks } from "./task.js";
import type { CancelSignal } from "../util/cancel.js";

/** Where tasks run: the app and what a Context needs. */
export interface RunEnv {
  app: AnyServe;
  replicaId: string;
  logger: Logger;
  objects?: ObjectStoreLike | undefined;
  caller?: Caller | undefined;
}

/**
 * Runs a non-streaming handler on one task; resolves with the encoded answer (a throw at any step
 * rejects, never throws). Not an async function: a handler that answers synchronously is encoded
 * in the same turn, without the promise and microtask an `await` of its value would cost.
 */
export function runTask(env: RunEnv, index: number, task: Task, signal: CancelSignal, hooks: TaskHooks = NO_HOOKS): Promise<EncodedBody> {
  try {
    const entry = handlerAt(env, index);
    const { req, ctx } = prepare(env, entry, task, signal, hooks, 0);
    const result = entry.fn(new InferenceRequest(req, task.call.q), ctx);
    const encode = (value: unknown): EncodedBody => encodeResponse(toResponse(value, entry, task.call, req), task.call.f, req);
    return isThenable(result) ? Promise.resolve(result).then(encode) : Promise.resolve(encode(result));
  } catch (err) {
    return Promise.reject(err);
  }
}

const NO_HOOKS: TaskHooks = {};

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function"
  );
}

/**
 * Runs a handler whose answer streams; each item is encoded and handed to `onChunk` in order.
 * Back-pressure: while `onChunk`'s promise is pending the next item is not pulled from the
 * handler's iterator (an async generator stays suspended at its `yield`; a {@link Stream}'s
 * `send` waits). A cancelled call stops pulling, and the iterator is closed (`return()`), so a
 * generator's `finally` runs.
 */
export async function runStreamTask(
  env: RunEnv,
  index: number,
  task: Task,
  signal: CancelSignal,
  onChunk: ChunkSink,
  hooks: TaskHooks = {},
): Promise<void> {
  const entry = handlerAt(env, index);
  const { req, ctx } = prepare(env, entry, task, signal, hooks, 0);
  const produced = await entry.fn(new InferenceRequest(req, task.call.q), ctx);
  for await (const item of asAsyncIterable(produced, entry)) {
    if (signal.aborted) break;
    const full = onChunk(encodeResponse(toResponse(item, entry, task.call, req), task.call.f, req));
    if (full instanceof Promise) await full;
    if (signal.aborted) break;
  }
}

/**
 * Runs a batch handler on several tasks. A task that does not decode fails alone and is not
 * passed to the handler; a slot holding an Error fails only that task; a throw, or an answer
 * of the wrong length, fails every task.
 */
export async function runBatchTask(
  env: RunEnv,
  index: number,
  tasks: Task[],
  signals: CancelSignal[],
  hooks: TaskHooks = {},
): Promise<BatchOutcome[]> {
  const entry = handlerAt(env, index);
  const out: BatchOutcome[] = new Array<BatchOutcome>(tasks.length);
  const live: { i: number; req: InferRequest; ctx: Context }[] = [];
  tasks.forEach((task, i) => {
    try {
      live.push({ i, ...prepare(env, entry, task, signals[i]!, hooks, i) });
    } catch (err) {
      out[i] = { ok: false, error: AnyServeError.from(err).toWire() };
    }
  });
  if (live.length === 0) return out;
  let results: unknown;
  try {
    results = await (entry.fn as unknown as BatchHandler)(
      live.map((l) => new InferenceRequest(l.req, tasks[l.i]!.call.q)),
      live.map((l) => l.ctx),
    );
    if (!Array.isArray(results) || results.length !== live.length) {
      throw new AnyServeError(
        "WORKER_ERROR",
        `batch handler for ${formatCapability(entry.capability)} returned ${
          Array.isArray(results) ? `${results.length} results` : typeof results
        } for ${live.length} requests; it must return an array of the same length`,
      );
    }
  } catch (err) {
    const error = AnyServeError.from(err).toWire();
    for (const l of live) out[l.i] = { ok: false, error };
    return out;
  }
  live.forEach((l, k) => {
    const call = tasks[l.i]!.call;
    try {
      const r = (results as unknown[])[k];
      if (r instanceof Error) throw r;
      out[l.i] = { ok: true, value: encodeResponse(toResponse(r, entry, call, l.req), call.f, l.req) };
    } catch (err) {
      out[l.i] = { ok: false, error: AnyServeError.from(err).toWire() };
    }
  });
  return out;
}

/** Runs the capability's `onStart` / `onStop` hook, if any. */
export async function runHook(env: RunEnv, index: number, hook: "onStart" | "onStop", worker: string): Promise<void> {
  const entry = handlerAt(env, index);
  const fn = entry.options[hook];
  if (fn) await fn({ capability: { ...entry.capability }, replicaId: env.replicaId, worker });
}

export function handlerAt(env: RunEnv, index: number): HandlerEntry {
  const entry = env.app.handlers[index];
  if (!entry)
    throw new AnyServeError(
      "INTERNAL",
      `handler #${index} is not registered in this copy of the app (it has ${env.app.handlers.length}): workers must load the same module as the replica`,
    );
  return entry;
}

function prepare(
  env: RunEnv,
  entry: HandlerEntry,
  task: Task,
  signal: CancelSignal,
  hooks: TaskHooks,
  index: number,
): { req: InferRequest; ctx: Context } {
  const req = decodeRequest(task.body, { contentType: task.call.ct, headerLength: task.call.hl });
  const deadline = requestDeadline(task.call.dl, req);
  if (deadline < task.call.dl) hooks.lowerDeadline?.(index, deadline);
  const ctx = new Context({
    replicaId: env.replicaId,
    capability: entry.capability,
    requestId: task.call.rid,
    signal,
    deadline,
    logger: env.logger,
    objects: env.objects,
    caller: env.caller,
    delegationDepth: task.call.d ?? 0,
  });
  return { req, ctx };
}

/**
 * The request's own `timeout` parameter (microseconds, as in Triton) lowers — never raises — the
 * deadline the submitter gave.
 */
export function requestDeadline(deadline: number, req: InferRequest, now = Date.now()): number {
  const t = req.parameters?.timeout;
  if (t === undefined) return deadline;
  if (typeof t !== "number" || !Number.isFinite(t) || t <= 0) {
    throw new AnyServeError(
      "INVALID_PARAMETER",
      `parameter 'timeout': expected a positive number of microseconds, got ${JSON.stringify(t)}`,
    );
  }
  return Math.min(deadline, now + t / 1000);
}

function toResponse(result: unknown, entry: HandlerEntry, call: TaskCall, req: InferRequest): InferResponse {
  const modelName = call.m?.name ?? req.modelName ?? entry.capability.model ?? entry.capability.type ?? "anyserve";
  const res = handlerResultToResponse(result, req.id === undefined ? { modelName } : { modelName, id: req.id });
  if (call.m?.version !== undefined && res.modelVersion === undefined) res.modelVersion = call.m.version;
  if (req.outputs && req.outputs.length > 0)
    res.outputs = selectOutputs(
      res.outputs,
      req.outputs.map((o) => o.name),
    );
  return res;
}

/** Keeps the outputs a request asked for, in its order (OIP `outputs`); asking for one the handler did not produce is a 400. */
function selectOutputs(outputs: InferResponse["outputs"], wanted: string[]): InferResponse["outputs"] {
  return wanted.map((name) => {
    const found = outputs.find((o) => o.name === name);
    if (!found) {
      throw new AnyServeError(
        "INVALID_REQUEST",
        `requested output '${name}' is not produced: the handler returned ${outputs.map((o) => `'${o.name}'`).join(", ") || "no outputs"}`,
      );
    }
    return found;
  });
}

function asAsyncIterable(value: unknown, entry: HandlerEntry): AsyncIterable<unknown> {
  if (value && typeof value === "object") {
    if (Symbol.asyncIterator in value) return value as AsyncIterable<unknown>;
    if (Symbol.iterator in value && !Array.isArray(value) && !ArrayBuffer.isView(value)) {
      return (async function* () {
        yield* value as Iterable<unknown>;
      })();
    }
  }
  if (entry.isStream) {
    throw new AnyServeError(
      "WORKER_ERROR",
      `streaming handler for ${formatCapability(entry.capability)} returned ${typeof value}, expected an async iterable or Stream`,
    );
  }
  return (async function* () {
    yield value;
  })();
}
