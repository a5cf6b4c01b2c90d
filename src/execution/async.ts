/**
 * `async`: handlers run on the replica's event loop, up to `thread_count` calls of each capability
 * at once. Right for handlers that spend their time awaiting (a remote model API, a database,
 * `ctx.call`): N awaits overlap for free. A synchronous handler still holds the loop while it
 * runs, exactly as under `single`.
 */
import type { ExecutionOptions, StrategyOptions } from "./base.js";
import { InlineExecution, InlineStrategy } from "./inline.js";

export function asyncExecution(options: ExecutionOptions): InlineExecution {
  return new InlineExecution("async", Math.max(1, options.threads), options);
}

export function createAsync(options: StrategyOptions): InlineStrategy {
  return new InlineStrategy("async", Math.max(1, options.threads), options);
}
