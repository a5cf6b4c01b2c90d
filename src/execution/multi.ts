/**
 * `multi`: `thread_count` worker threads, fixed, each with its own copy of the app. For CPU-bound
 * handlers with a steady load; bodies cross by transfer, decoding and encoding happen in the
 * thread. A thread stuck past its deadline (+ grace) is terminated and replaced.
 */
import type { StrategyOptions } from "./base.js";
import { GroupStrategy, threadGroup } from "./threads.js";

export function createMulti(o: StrategyOptions): GroupStrategy {
  const n = Math.max(1, o.threads);
  return new GroupStrategy("multi", threadGroup("multi", o, n, n));
}
