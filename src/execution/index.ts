/**
 * The execution strategies by name. `createStrategy("pool", options)`; an unknown name is an
 * error that lists the valid ones.
 *
 * @example
 * ```ts
 * const strategy = createStrategy("multi", { env, handler: 0, appSpec: "./app.ts:app", threads: 4, graceMs: 1000, startRetries: 3, poolIdleMs: 30_000 });
 * await strategy.start();
 * ```
 */
import { createAsync } from "./async.js";
import type { ExecutionStrategy, StrategyName, StrategyOptions } from "./base.js";
import { createMulti } from "./multi.js";
import { createPool } from "./pool.js";
import { createProcess } from "./process.js";
import { createPythonStrategy } from "./python.js";
import { isPythonApp } from "../sdk/python-app.js";
import { createSingle } from "./single.js";

export type StrategyFactory = (options: StrategyOptions) => ExecutionStrategy;

const factories = new Map<string, StrategyFactory>([
  ["single", createSingle],
  ["async", createAsync],
  ["multi", createMulti],
  ["pool", createPool],
  ["process", createProcess],
]);

/** Names of the strategies that run handlers in other threads or processes (they need the app's module path). */
export const WORKER_STRATEGIES: ReadonlySet<string> = new Set(["multi", "pool", "process"]);

export function strategyNames(): string[] {
  return [...factories.keys()];
}

/** The strategy `name` for one handler; a Python app's handlers always run in Python worker processes (python.ts). */
export function createStrategy(name: string, options: StrategyOptions): ExecutionStrategy {
  const factory = factories.get(name);
  if (!factory) throw new Error(`unknown execution strategy '${name}'; valid: ${strategyNames().join(", ")}`);
  const app = options.env.app;
  if (isPythonApp(app)) return createPythonStrategy(name as StrategyName, options, app);
  return factory(options);
}

export type { ExecutionStrategy, StrategyOptions, StrategyStats, StrategyName, WorkerCounts } from "./base.js";
