/**
 * `process`: `thread_count` child processes, each loading the app, shared by the app's
 * capabilities, speaking the framed worker protocol over a Unix socket (docs/worker-protocol.md).
 * Crash isolation and separate heaps: a handler that calls `process.exit`, segfaults in a native
 * addon or leaks memory takes down only its process. Costs more than threads: a Node start-up per
 * worker and body copies over the socket.
 */
import type { ExecutionOptions, ExecutionStrategy, StrategyOptions } from "./base.js";
import { ProcessSpawner } from "./process-handle.js";
import { groupOptions, requireAppSpec, workerStoreConfig } from "./threads.js";
import { WorkerGroup } from "./worker-group.js";
import { serveWorkerRequest } from "./worker-requests.js";
import { SharedWorkers } from "./workers.js";

export function processWorkers(o: ExecutionOptions): SharedWorkers {
  const n = Math.max(1, o.threads);
  const appSpec = requireAppSpec("process", o);
  // A socket (in a fresh directory) per run of the workers: it listens before the first child
  // starts, and goes with the last one.
  return new SharedWorkers("process", o, () => {
    const spawner = new ProcessSpawner({
      appSpec,
      replicaId: o.env.replicaId,
      apiServer: o.apiServer,
      memoryMb: o.memoryMb,
      workerEnv: o.workerEnv,
      objects: workerStoreConfig(o.env.objects),
      service: o.service,
    });
    return new WorkerGroup({
      ...groupOptions("process", o, spawner.spawn, n, n),
      // A worker process's ctx.call goes through the replica (replica-caller.ts): it holds no token.
      onWorkerRequest: (handle, type, id, meta, body, signal) => serveWorkerRequest(o, handle, type, id, meta, body, signal),
      prepare: () => spawner.listen(),
      cleanup: () => spawner.close(),
    });
  });
}

/** One handler on workers of its own (tests; a replica shares its workers: `createExecution`). */
export function createProcess(o: StrategyOptions): ExecutionStrategy {
  return processWorkers(o).strategy(o.handler, o.onFailed);
}
