/**
 * The execution strategies by name. A replica makes one {@link Execution} for its app
 * (`createExecution("multi", options)`) and each capability's lane takes its strategy from it;
 * `createStrategy` makes one handler's strategy on its own. An unknown name is an error that lists
 * the valid ones.
 *
 * @example
 * ```ts
 * const execution = createExecution("multi", { env, appSpec: "./app.ts:app", threads: 4, graceMs: 1000, startRetries: 3, poolIdleMs: 30_000 });
 * const strategy = execution.strategy(0); // handler 0 of the app, on the 4 shared threads
 * await strategy.start();
 * ```
 */
import { asyncExecution } from "./async.js";
import type { Execution, ExecutionOptions, ExecutionStrategy, StrategyName, StrategyOptions } from "./base.js";
import { multiWorkers } from "./multi.js";
import { poolWorkers } from "./pool.js";
import { processWorkers } from "./process.js";
import { pythonWorkers } from "./python.js";
import { isPythonApp } from "../sdk/python-app.js";
import { singleExecution } from "./single.js";

export type ExecutionFactory = (options: ExecutionOptions) => Execution;

const factories = new Map<string, ExecutionFactory>([
  ["single", singleExecution],
  ["async", asyncExecution],
  ["multi", multiWorkers],
  ["pool", poolWorkers],
  ["process", processWorkers],
]);

/** Names of the strategies that run handlers in other threads or processes (they need the app's module path). */
export const WORKER_STRATEGIES: ReadonlySet<string> = new Set(["multi", "pool", "process"]);

export function strategyNames(): string[] {
  return [...factories.keys()];
}

export function createExecution(name: string, options: ExecutionOptions): Execution {
  const factory = factories.get(name);
  if (!factory) throw new Error(`unknown execution strategy '${name}'; valid: ${strategyNames().join(", ")}`);
  // A Python app's handlers always run in Python worker processes (python.ts).
  const app = options.env.app;
  if (isPythonApp(app)) return pythonWorkers(name as StrategyName, options, app);
  return factory(options);
}

/** One handler's strategy with workers of its own. */
export function createStrategy(name: string, options: StrategyOptions): ExecutionStrategy {
  return createExecution(name, options).strategy(options.handler, options.onFailed);
}

export type {
  CallerAuth,
  Execution,
  ExecutionOptions,
  ExecutionStrategy,
  StrategyOptions,
  StrategyStats,
  StrategyName,
  WorkerCounts,
} from "./base.js";
