/**
 * The execution settings a replica runs each capability with. They are derived from the service's
 * resolved config (`src/replica/service-config.ts`); the defaults live in the config schema
 * (`src/config/schema.ts`), not here.
 */
import { strategyNames, WORKER_STRATEGIES } from "./index.js";

export interface ExecutionConfig {
  /** `single`, `async`, `multi`, `pool` or `process`. */
  strategy: string;
  /** `thread_count`: calls at once for async, workers for multi and process, the pool's fewest. */
  threads: number;
  /** `pool`'s `max_thread_count` (at least `threads`). */
  maxThreads: number;
  /** Requests that may wait beyond those running, per capability. */
  queueSize: number;
  /** Largest batch for `{batch: true}` handlers (1: no batching). */
  batchSize: number;
  /** Longest a batch waits to fill after its first request. */
  batchWaitMs: number;
  /** A lazy capability's workers stop after this long without requests. */
  idleTimeoutMs: number;
  /** Heap limit per worker thread or process, MB (undefined: Node's). */
  memoryMb?: number | undefined;
  /** How long a worker may ignore an abort before it is terminated. */
  graceMs: number;
  /** Start failures in a row before a capability is `failed`. */
  startRetries: number;
  /** `pool`: idle time after which threads above `threads` stop. */
  poolIdleMs: number;
  /** `process`: environment variables passed to the children besides the minimal set. */
  workerEnv: readonly string[];
  /** Every capability starts cold, as if declared `{lazy: true}`. */
  lazy: boolean;
}

/** Worker start failures in a row after which a capability is `failed` (Ray gives up after 3 too). */
export const START_RETRIES = 3;

/** Throws an Error naming what cannot run: an unknown strategy, or a worker strategy without the app's module path. */
export function checkExecution(cfg: ExecutionConfig, appSpec: string | undefined): ExecutionConfig {
  if (!strategyNames().includes(cfg.strategy)) {
    throw new Error(`strategy: unknown '${cfg.strategy}'; valid: ${strategyNames().join(", ")}`);
  }
  if (WORKER_STRATEGIES.has(cfg.strategy) && !appSpec) {
    throw new Error(
      `strategy '${cfg.strategy}' runs the app in worker threads or processes, which load it themselves: give the app's module path (appSpec)`,
    );
  }
  return cfg;
}
