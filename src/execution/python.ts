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
import { pythonEnv, type PythonApp } from "../sdk/python-app.js";
import type { ExecutionOptions, StrategyName } from "./base.js";
import { ProcessSpawner } from "./process-handle.js";
import { groupOptions, workerStoreConfig } from "./threads.js";
import { WorkerGroup } from "./worker-group.js";
import { SharedWorkers } from "./workers.js";
import { serveWorkerRequest } from "./worker-requests.js";

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
