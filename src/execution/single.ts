/**
 * `single`: handlers run on the replica's event loop, each capability strictly one call at a time —
 * the seed's default and the safe choice for handlers that keep state between awaits. Pick `async`
 * for handlers that await I/O, a thread or process strategy for CPU-bound ones.
 */
import type { ExecutionOptions, StrategyOptions } from "./base.js";
import { InlineExecution, InlineStrategy } from "./inline.js";

export function singleExecution(options: ExecutionOptions): InlineExecution {
  return new InlineExecution("single", 1, options);
}

export function createSingle(options: StrategyOptions): InlineStrategy {
  return new InlineStrategy("single", 1, options);
}
