/**
 * Execution settings of a replica and their defaults. Until the deployment config exists they
 * come from `anyserve start` flags and apply to every capability of the replica; the deployment
 * config will set the same fields per capability.
 *
 * @example
 * ```ts
 * await startReplica({ app, appSpec: "./app.ts:app", execution: { strategy: "pool", threads: 2, maxThreads: 8, queueSize: 100 } });
 * ```
 */
import os from "node:os";
import { strategyNames, WORKER_STRATEGIES } from "./index.js";

export interface ExecutionConfig {
  /** `single`, `async` (default), `multi`, `pool` or `process`. */
  strategy: string;
  /** `thread_count`; default: 1 for single, 64 for async, one per CPU for multi and process, 1 for pool. */
  threads: number;
  /** `pool`'s `max_thread_count`; default one per CPU (at least `threads`). */
  maxThreads: number;
  /** Requests that may wait beyond those running, per capability (default 1000, as in the seed). */
  queueSize: number;
  /** Largest batch for `{batch: true}` handlers (default 1: no batching). */
  batchSize: number;
  /** Longest a batch waits to fill after its first request (default 5 ms). */
  batchWaitMs: number;
  /** A lazy capability's workers stop after this long without requests (default 5 min). */
  idleTimeoutMs: number;
  /** Heap limit per worker thread or process, MB (default: Node's). */
  memoryMb?: number | undefined;
  /** How long a worker may ignore an abort before it is terminated (default 1 s). */
  graceMs: number;
  /** Start failures in a row before a capability is `failed` (default 3). */
  startRetries: number;
  /** `pool`: idle time after which threads above `threads` stop (default 30 s). */
  poolIdleMs: number;
  /** `process`: environment variables passed to the children besides the minimal set. */
  workerEnv: string[];
  /** Every capability starts cold, as if declared `{lazy: true}` (the deployment's `lazy`). */
  lazy: boolean;
}

export function defaultThreads(strategy: string): number {
  switch (strategy) {
    case "single":
    case "pool":
      return 1;
    case "async":
      return 64;
    default:
      return os.availableParallelism();
  }
}

/** Fills defaults and checks the values; throws an Error naming the bad field. */
export function resolveExecution(given: Partial<ExecutionConfig> = {}, appSpec?: string): ExecutionConfig {
  const strategy = given.strategy ?? "async";
  if (!strategyNames().includes(strategy)) throw new Error(`strategy: unknown '${strategy}'; valid: ${strategyNames().join(", ")}`);
  if (WORKER_STRATEGIES.has(strategy) && !appSpec) {
    throw new Error(
      `strategy '${strategy}' runs the app in worker threads or processes, which load it themselves: give the app's module path (appSpec)`,
    );
  }
  const threads = given.threads ?? defaultThreads(strategy);
  const cfg: ExecutionConfig = {
    strategy,
    threads,
    maxThreads: Math.max(threads, given.maxThreads ?? os.availableParallelism()),
    queueSize: given.queueSize ?? 1000,
    batchSize: given.batchSize ?? 1,
    batchWaitMs: given.batchWaitMs ?? 5,
    idleTimeoutMs: given.idleTimeoutMs ?? 300_000,
    memoryMb: given.memoryMb,
    graceMs: given.graceMs ?? 1_000,
    startRetries: given.startRetries ?? 3,
    poolIdleMs: given.poolIdleMs ?? 30_000,
    workerEnv: given.workerEnv ?? [],
    lazy: given.lazy ?? false,
  };
  for (const [k, min] of [
    ["threads", 1],
    ["maxThreads", 1],
    ["queueSize", 0],
    ["batchSize", 1],
    ["batchWaitMs", 0],
    ["idleTimeoutMs", 1],
    ["graceMs", 0],
    ["startRetries", 1],
    ["poolIdleMs", 1],
  ] as const) {
    const v = cfg[k];
    if (!Number.isFinite(v) || v < min) throw new Error(`${k}: expected a number ≥ ${min}, got ${v}`);
  }
  if (cfg.memoryMb !== undefined && !(cfg.memoryMb >= 16)) throw new Error(`memoryMb: expected at least 16, got ${cfg.memoryMb}`);
  return cfg;
}
