/**
 * `multi`: `thread_count` worker threads, fixed, each with its own copy of the app, shared by the
 * app's capabilities. For CPU-bound handlers with a steady load; bodies cross by transfer,
 * decoding and encoding happen in the thread. A thread stuck past its deadline (+ grace) is
 * terminated and replaced.
 */
import type { ExecutionOptions, ExecutionStrategy, StrategyOptions } from "./base.js";
import { groupOptions, threadSpawner } from "./threads.js";
import { WorkerGroup } from "./worker-group.js";
import { SharedWorkers } from "./workers.js";

export function multiWorkers(o: ExecutionOptions): SharedWorkers {
  const n = Math.max(1, o.threads);
  return new SharedWorkers("multi", o, () => new WorkerGroup(groupOptions("multi", o, threadSpawner("multi", o), n, n)));
}

/** One handler on workers of its own (tests; a replica shares its workers: `createExecution`). */
export function createMulti(o: StrategyOptions): ExecutionStrategy {
  return multiWorkers(o).strategy(o.handler, o.onFailed);
}
