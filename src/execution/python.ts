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
 * **Units.** A Python worker serves a whole unit of handlers, and RUN names the handler (`h`): a
 * function handler is a unit of its own; every method of a class service is one unit, so one
 * instance per process serves them all (`set` then `get` see the same state). The lanes of one
 * unit share its group: the first lane to start starts it, the last to stop stops it.
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
import type { EncodedBody } from "../protocol/types.js";
import { pythonEnv, type PythonApp } from "../sdk/python-app.js";
import { answerMeta } from "../transport/call-meta.js";
import { toAbortSignal, type CancelSignal } from "../util/cancel.js";
import type { ExecutionStrategy, StrategyName, StrategyOptions, StrategyStats } from "./base.js";
import type { WorkerHandle } from "./handle.js";
import { ProcessSpawner } from "./process-handle.js";
import type { BatchOutcome, Task, TaskHooks } from "./task.js";
import { workerStoreConfig } from "./threads.js";
import { WorkerGroup } from "./worker-group.js";
import { errorMetaOf, Msg, type Meta } from "./worker-protocol.js";

/** How a Python worker says it ran out of memory (`memory_mb`): this line on stderr and exit code 87 (worker/protocol.py). */
const PYTHON_OOM = /\bMemoryError\b/;
const PYTHON_OOM_EXIT = 87;

/** Workers and jobs at once per worker, by strategy (see the table above). */
function sizes(name: StrategyName, o: StrategyOptions): { min: number; max: number; perWorker: number } {
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

/** The units of one dispatcher (its lanes share one `env` object), so lanes of one unit share workers. */
const unitsByEnv = new WeakMap<object, Map<number, PythonUnit>>();

/** The worker processes of one unit, shared by the lanes of its handlers. */
class PythonUnit {
  readonly group: WorkerGroup;
  readonly #spawner: ProcessSpawner;
  readonly #views = new Set<PythonStrategy>();
  readonly #forget: () => void;
  #started: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;

  constructor(name: StrategyName, o: StrategyOptions, app: PythonApp, unit: number, forget: () => void) {
    this.#forget = forget;
    const size = sizes(name, o);
    this.#spawner = new ProcessSpawner({
      appSpec: app.spec,
      handler: unit,
      replicaId: o.env.replicaId,
      apiServer: undefined, // calls go through the replica (CALL), never straight from the worker
      memoryMb: undefined,
      workerEnv: o.workerEnv,
      objects: workerStoreConfig(o.env.objects),
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
    this.group = new WorkerGroup({
      name,
      kind: "python",
      spawn: this.#spawner.spawn,
      min: size.min,
      max: size.max,
      perWorker: size.perWorker,
      depth: { normal: size.perWorker + 1, cheap: Math.max(64, size.perWorker + 1) },
      graceMs: o.graceMs,
      startRetries: o.startRetries,
      idleMs: o.poolIdleMs,
      logger: o.env.logger,
      onFailed: (reason) => {
        this.#forget();
        for (const v of [...this.#views]) v.failed(reason);
      },
      onWorkerRequest: (handle, type, id, meta, body, signal) => serveWorkerRequest(o, handle, type, id, meta, body, signal),
    });
  }

  acquire(view: PythonStrategy): Promise<void> {
    this.#views.add(view);
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    await this.#spawner.listen();
    try {
      await this.group.start();
    } catch (err) {
      this.#forget();
      await this.#stop();
      throw err;
    }
  }

  /** A lane let go; the last one stops the workers. */
  release(view: PythonStrategy): Promise<void> {
    this.#views.delete(view);
    if (this.#views.size > 0) return Promise.resolve();
    this.#forget();
    return this.#stop();
  }

  #stop(): Promise<void> {
    this.#stopped ??= (async () => {
      await this.group.stop();
      await this.#spawner.close();
    })();
    return this.#stopped;
  }
}

/** One lane's view of its unit's workers: its jobs name its handler. */
class PythonStrategy implements ExecutionStrategy {
  readonly name: StrategyName;
  readonly #unit: PythonUnit;
  readonly #handler: number;
  readonly #onFailed: ((reason: string) => void) | undefined;
  #released: Promise<void> | undefined;

  constructor(name: StrategyName, unit: PythonUnit, o: StrategyOptions) {
    this.name = name;
    this.#unit = unit;
    this.#handler = o.handler;
    this.#onFailed = o.onFailed;
  }

  get capacity(): number {
    return this.#unit.group.capacity;
  }

  get concurrency(): number {
    return this.#unit.group.maxWorkers * this.#unit.group.perWorker;
  }

  start(): Promise<void> {
    return this.#unit.acquire(this);
  }

  submit(task: Task, signal: CancelSignal, hooks?: TaskHooks): Promise<EncodedBody> {
    return this.#unit.group.run("infer", [task], [signal], hooks, undefined, this.#handler) as Promise<EncodedBody>;
  }

  async stream(task: Task, signal: CancelSignal, onChunk: (chunk: EncodedBody) => void, hooks?: TaskHooks): Promise<void> {
    await this.#unit.group.run("stream", [task], [signal], hooks, onChunk, this.#handler);
  }

  submitBatch(tasks: Task[], signals: CancelSignal[], hooks?: TaskHooks): Promise<BatchOutcome[]> {
    return this.#unit.group.run("batch", tasks, signals, hooks, undefined, this.#handler) as Promise<BatchOutcome[]>;
  }

  stop(): Promise<void> {
    this.#released ??= this.#unit.release(this);
    return this.#released;
  }

  stats(): StrategyStats {
    return this.#unit.group.stats();
  }

  failed(reason: string): void {
    this.#onFailed?.(reason);
  }
}

/** The strategy `name` for handler `o.handler` of a Python app. */
export function createPythonStrategy(name: StrategyName, o: StrategyOptions, app: PythonApp): ExecutionStrategy {
  const unit = app.units[o.handler] ?? o.handler;
  let units = unitsByEnv.get(o.env);
  if (!units) unitsByEnv.set(o.env, (units = new Map()));
  let shared = units.get(unit);
  if (!shared) {
    const map = units;
    const made: PythonUnit = new PythonUnit(name, o, app, unit, () => {
      if (map.get(unit) === made) map.delete(unit);
    });
    map.set(unit, made);
    shared = made;
  }
  return new PythonStrategy(name, shared, o);
}

/** Answers a worker's CALL (through the replica's caller) or FETCH (through its object store). */
function serveWorkerRequest(
  o: StrategyOptions,
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

async function call(o: StrategyOptions, meta: Meta, body: Buffer, signal: CancelSignal | undefined): Promise<{ meta: Meta; body: Buffer }> {
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
