/**
 * `pool`: worker threads from `thread_count` growing to `max_thread_count` while every thread is
 * busy, and shrinking back after `poolIdleMs` idle. For bursty CPU-bound load: few threads (and
 * little memory) when quiet, more under load. Written on `node:worker_threads` rather than with a
 * pool library: Piscina with one task per thread (its default) kept 0.43× of inline throughput on
 * this machine, against 0.85× for pipelined id-tagged messages; and with several tasks per thread
 * a pool cannot tell which tasks of a dead thread had started, so it could not re-send the rest.
 */
import type { StrategyOptions } from "./base.js";
import { GroupStrategy, threadGroup } from "./threads.js";

export function createPool(o: StrategyOptions): GroupStrategy {
  const min = Math.max(1, o.threads);
  const max = Math.max(min, o.maxThreads ?? min);
  return new GroupStrategy("pool", threadGroup("pool", o, min, max));
}
