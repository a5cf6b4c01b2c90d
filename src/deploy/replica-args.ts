/**
 * How a service's config becomes a replica process: the `anyserve start` arguments and a minimal,
 * explicit environment (GPU ids through CUDA_VISIBLE_DEVICES).
 */
import type { ExecutionConfig } from "../execution/config.js";
import type { ServiceConfig } from "./schema.js";

export interface ReplicaArgsInput {
  service: string;
  cfg: ServiceConfig;
  replicaId: string;
  apiServer: string;
  nodeName: string;
}

export function replicaArgs({ service, cfg, replicaId, apiServer, nodeName }: ReplicaArgsInput): string[] {
  const d = cfg.deployment;
  const perf = cfg.performance;
  const args = [
    "start",
    "--app",
    cfg.app,
    "--port",
    "0",
    "--api-server",
    apiServer,
    "--replica-id",
    replicaId,
    "--service",
    service,
    "--node",
    nodeName,
    "--heartbeat-interval",
    String(cfg.monitoring.health_check_interval),
    "--strategy",
    d.threading_strategy,
    "--threads",
    String(d.thread_count),
    "--queue-size",
    String(perf.queue_size),
    "--timeout",
    String(perf.timeout),
    "--batch-wait-ms",
    String(perf.batch_wait_ms),
  ];
  const maxThreads = d.max_thread_count ?? d.thread_pool_size;
  if (maxThreads !== null) args.push("--max-threads", String(maxThreads));
  if (perf.batch_size !== null) args.push("--batch-size", String(perf.batch_size));
  if (d.idle_timeout !== null) args.push("--idle-timeout", String(d.idle_timeout));
  if (d.lazy) args.push("--lazy");
  if (cfg.resources.memory_mb !== null) args.push("--memory-mb", String(cfg.resources.memory_mb));
  if (cfg.monitoring.enable_metrics === false) args.push("--no-metrics");
  return args;
}

/** The replica's environment: ours minus secrets, plus its GPUs. */
export function replicaEnv(cfg: ServiceConfig, gpuIds: number[], token: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.ANYSERVE_TOKEN;
  if (token) env.ANYSERVE_TOKEN = token; // the replica needs it to register; its workers get a minimal env of their own
  if ((cfg.resources.gpu_count ?? 0) > 0) env.CUDA_VISIBLE_DEVICES = gpuIds.join(",");
  return env;
}

/** The execution settings a service config asks for (the same values `replicaArgs` passes as flags). */
export function executionOf(cfg: ServiceConfig): Partial<ExecutionConfig> {
  const d = cfg.deployment;
  const p = cfg.performance;
  const maxThreads = d.max_thread_count ?? d.thread_pool_size;
  return {
    strategy: d.threading_strategy,
    threads: d.thread_count,
    ...(maxThreads !== null ? { maxThreads } : {}),
    queueSize: p.queue_size,
    batchSize: p.batch_size ?? 1,
    batchWaitMs: p.batch_wait_ms,
    ...(d.idle_timeout !== null ? { idleTimeoutMs: d.idle_timeout * 1000 } : {}),
    ...(cfg.resources.memory_mb !== null ? { memoryMb: cfg.resources.memory_mb } : {}),
    lazy: d.lazy,
  };
}
