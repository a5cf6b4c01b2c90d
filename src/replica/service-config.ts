/**
 * How a replica turns its service's resolved config into the settings of its parts. Only names
 * and units change here; every value and default comes from the config (`src/config/`).
 */
import { type ResolvedServiceConfig, resolveService } from "../config/resolve.js";
import type { ServiceConfigInput } from "../config/schema.js";
import { type ExecutionConfig, START_RETRIES } from "../execution/config.js";

/** The execution settings of a resolved service config. */
export function executionOf(cfg: ResolvedServiceConfig): ExecutionConfig {
  const d = cfg.deployment;
  const p = cfg.performance;
  return {
    strategy: d.threading_strategy,
    threads: d.thread_count,
    maxThreads: d.max_thread_count,
    queueSize: p.queue_size,
    batchSize: p.batch_size,
    batchWaitMs: p.batch_wait_ms,
    idleTimeoutMs: d.idle_timeout * 1000,
    memoryMb: cfg.resources.memory_mb ?? undefined,
    graceMs: p.abort_grace * 1000,
    startRetries: START_RETRIES,
    poolIdleMs: d.pool_idle_timeout * 1000,
    workerEnv: d.worker_env,
    lazy: d.lazy,
  };
}

/**
 * A config given in code: already resolved, or written as in a deployment file (validated and
 * resolved here). Without one, the schema's defaults for `appSpec`.
 */
export function serviceConfigOf(
  config: ServiceConfigInput | ResolvedServiceConfig | undefined,
  appSpec: string | undefined,
): ResolvedServiceConfig {
  if (config !== undefined && Object.isFrozen(config)) return config as ResolvedServiceConfig;
  return resolveService(config ?? { app: appSpec ?? IN_PROCESS_APP });
}

/** The `app` a config names for an app object handed over in code (it is not loaded from a file). */
export const IN_PROCESS_APP = "(in-process)";
