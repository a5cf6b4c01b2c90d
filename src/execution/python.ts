/**
 * Python apps on Python worker processes. A replica cannot run Python handlers itself, so every
 * strategy of a Python app is a {@link WorkerGroup} of `python -m anyserve.worker` processes
 * (python/anyserve/worker/), speaking the framed worker protocol over a Unix socket like `process`
 * workers (docs/worker-protocol.md), with the strategies meaning what they say:
 *
 * | strategy | Python processes | jobs at once per process |
 * |---|---|---|
 * | `single` | 1 | 1 |
 * | `async` | 1 | `thread_count` (`async def` on an asyncio loop, `def` in a thread pool) |
 * | `multi`, `process` | `thread_count` | 1 |
 * | `pool` | `thread_count` … `max_thread_count`, shrinking when idle | 1 |
 *
 * **Shared workers.** As for Node workers (workers.ts), the replica's Python processes serve every
 * handler of the app: a capability's lane starts its handler with OPEN, and RUN names the handler
 * (`h`). In a worker, handlers belong to *units*: a function handler is a unit of its own, every
 * method of a class service is one unit (one instance per process serves them all); a unit's start
 * hooks run when its first handler is opened and its stop hooks when its last is closed. Calls of
 * a class service are pinned by their first argument (`static affinity`, python-app.ts), so with
 * several processes a key's calls meet the same instance.
 *
 * **What the worker asks the replica.** `ctx.call` in Python sends CALL; the replica makes the
 * call with its own caller (its token, its route table), bound to the job's deadline and abort, and
 * answers CALL_RESULT. An object owned by another replica is read with FETCH: the replica fetches it
 * (with its token) and answers FETCHED. Workers never hold the token.
 */
import { AnyServeError } from "../errors.js";
import type { ObjectStoreApi } from "../objects/types.js";
import { normalizeCapability } from "../protocol/capability.js";
import { decodeRequest } from "../protocol/codec.js";
import { encodeJsonResponse } from "../protocol/json-codec.js";
import { pythonEnv, type PythonApp } from "../sdk/python-app.js";
import { answerMeta } from "../transport/call-meta.js";
import { toAbortSignal, type CancelSignal } from "../util/cancel.js";
import type { ExecutionOptions, StrategyName } from "./base.js";
import type { WorkerHandle } from "./handle.js";
import { ProcessSpawner } from "./process-handle.js";
import { groupOptions, workerStoreConfig } from "./threads.js";
import { WorkerGroup } from "./worker-group.js";
import { SharedWorkers } from "./workers.js";
import { errorMetaOf, Msg, type Meta } from "./worker-protocol.js";

/** How a Python worker says it ran out of memory (`memory_mb`): this line on stderr and exit code 87 (worker/protocol.py). */
const PYTHON_OOM = /\bMemoryError\b/;
const PYTHON_OOM_EXIT = 87;

/** Workers and jobs at once per worker, by strategy (see the table above). */
function sizes(name: StrategyName, o: ExecutionOptions): { min: number; max: number; perWorker: number } {
  const n = Math.max(1, o.threads);
  switch (name) {
    case "single":
      return { min: 1, max: 1, perWorker: 1 };
    case "async":
      return { min: 1, max: 1, perWorker: n };
    case "pool":
      return { min: n, max: Math.max(n, o.maxThreads ?? n), perWorker: 1 };
    default:
      return { min: n, max: n, perWorker: 1 };
  }
}

/**
 * The Python worker processes of a replica, shared by its capabilities as Node workers are
 * (workers.ts): each capability's lane starts its handler with OPEN (the worker runs the handler's
 * unit's start hooks once) and its jobs name it (RUN `h`).
 */
export function pythonWorkers(name: StrategyName, o: ExecutionOptions, app: PythonApp): SharedWorkers {
  const size = sizes(name, o);
  return new SharedWorkers(name, o, () => {
    const spawner = new ProcessSpawner({
      appSpec: app.spec,
      replicaId: o.env.replicaId,
      apiServer: undefined, // calls go through the replica (CALL), never straight from the worker
      memoryMb: undefined,
      workerEnv: o.workerEnv,
      objects: workerStoreConfig(o.env.objects),
      service: o.service,
      command: {
        file: app.python,
        args: ["-m", "anyserve.worker"],
        env: {
          ...pythonEnv(o.workerEnv),
          ANYSERVE_WORKER_CONCURRENCY: String(size.perWorker),
          ...(o.memoryMb ? { ANYSERVE_WORKER_MEMORY_MB: String(o.memoryMb) } : {}),
        },
        passEnv: [],
        oom: PYTHON_OOM,
        oomExitCode: PYTHON_OOM_EXIT,
      },
    });
    return new WorkerGroup({
      ...groupOptions(name, o, spawner.spawn, size.min, size.max),
      kind: "python",
      perWorker: size.perWorker,
      depth: { normal: size.perWorker + 1, cheap: Math.max(64, size.perWorker + 1) },
      prepare: () => spawner.listen(),
      cleanup: () => spawner.close(),
      onWorkerRequest: (handle, type, id, meta, body, signal) => serveWorkerRequest(o, handle, type, id, meta, body, signal),
    });
  });
}

/** Answers a worker's CALL (through the replica's caller) or FETCH (through its object store). */
function serveWorkerRequest(
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
