/**
 * `pool`: worker threads from `thread_count` growing to `max_thread_count` while every thread is
 * busy, and shrinking back after `poolIdleMs` idle, shared by the app's capabilities. For bursty
 * CPU-bound load: few threads (and little memory) when quiet, more under load. Written on
 * `node:worker_threads` rather than with a pool library: Piscina with one task per thread (its
 * default) kept 0.43× of inline throughput on this machine, against 0.85× for pipelined id-tagged
 * messages; and with several tasks per thread a pool cannot tell which tasks of a dead thread had
 * started, so it could not re-send the rest.
 */
import type { ExecutionOptions, ExecutionStrategy, StrategyOptions } from "./base.js";
import { groupOptions, threadSpawner } from "./threads.js";
import { WorkerGroup } from "./worker-group.js";
import { SharedWorkers } from "./workers.js";

export function poolWorkers(o: ExecutionOptions): SharedWorkers {
  const min = Math.max(1, o.threads);
  const max = Math.max(min, o.maxThreads ?? min);
  return new SharedWorkers("pool", o, () => new WorkerGroup(groupOptions("pool", o, threadSpawner("pool", o), min, max)));
}

/** One handler on workers of its own (tests; a replica shares its workers: `createExecution`). */
export function createPool(o: StrategyOptions): ExecutionStrategy {
  return poolWorkers(o).strategy(o.handler, o.onFailed);
}
