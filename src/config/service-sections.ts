/**
 * The sections of a service that say how its replicas run — the seed's `ServiceDeploymentConfig`
 * (`deployment`, `resources`, `performance`) and `tls` — each field with its range, default, update
 * type and `anyserve start` flag. schema.ts composes them into the service schema; the rules that
 * span fields (thread_count ≤ max_thread_count, target → target_nodes, cert with key) are
 * service-rules.ts's.
 *
 * @example
 * ```ts
 * deployment.parse({ threading_strategy: "pool", thread_count: 2 }).max_thread_count; // null
 * ```
 */
import { z } from "zod";
import { envName, meta, name, optionalPath, positiveInt, seconds, writeTimeout } from "./primitives.js";

export const TARGETS = ["local", "remote_any", "remote_specific", "cluster_group"] as const;
export const STRATEGIES = ["single", "async", "multi", "pool", "process"] as const;
export const BALANCING = ["power_of_two", "round_robin", "random", "least_requests", "consistent_hash", "first_available"] as const;

/**
 * The least memory a replica runs in, MB: its heap limit when `memory_mb` is set (a Node process
 * serving an app needs ~40 MB of heap) and what placement counts per replica when it is not.
 */
export const MIN_REPLICA_MEMORY_MB = 64;

export const deployment = z.strictObject({
  target: z
    .enum(TARGETS)
    .default("local")
    .meta(meta({ update: "restart", flag: false, help: "where replicas may run" })),
  target_nodes: z
    .array(name)
    .max(256)
    .nullable()
    .default(null)
    .meta(meta({ update: "restart", flag: false, help: "node names the service may run on" })),
  node_selector: z
    .record(name, z.string().max(256))
    .nullable()
    .default(null)
    .meta(meta({ update: "restart", flag: false, help: "labels a node must have" })),
  threading_strategy: z
    .enum(STRATEGIES)
    .default("single")
    .meta(meta({ update: "restart", help: "how handlers run (docs/execution.md)" })),
  thread_count: positiveInt(1024)
    .nullable()
    .default(null)
    .meta(
      meta({
        update: "restart",
        help: "async: calls at once; multi/process: workers; pool: fewest threads (default: 1 for single and pool, 64 for async, one per CPU for multi and process)",
      }),
    ),
  max_thread_count: positiveInt(1024)
    .nullable()
    .default(null)
    .meta(meta({ update: "restart", help: "pool: the most threads it grows to (default: thread_pool_size, else one per CPU)" })),
  thread_pool_size: positiveInt(1024)
    .nullable()
    .default(null)
    .meta(meta({ update: "restart", help: "pool: the seed's name for max_thread_count, used when that is unset" })),
  replicas: z
    .number()
    .int()
    .min(0)
    .max(1000)
    .default(1)
    .meta(meta({ update: "live", flag: false, help: "replica processes" })),
  // The seed defaults to false; replicas > 1 that do not share load waste capacity, so true.
  load_balancing: z
    .union([z.boolean(), z.enum(BALANCING)])
    .default(true)
    .meta(meta({ update: "live", flag: false, help: "how the API server picks among the service's replicas" })),
  failover_enabled: z
    .boolean()
    .default(false)
    .meta(meta({ update: "live", flag: false, help: "retry undelivered requests on another replica" })),
  lazy: z
    .boolean()
    .default(false)
    .meta(meta({ update: "restart", help: "every capability starts cold: workers start on the first request" })),
  idle_timeout: seconds
    .default(300)
    .meta(meta({ update: "restart", help: "seconds without requests after which a lazy capability stops its workers" })),
  pool_idle_timeout: seconds
    .default(30)
    .meta(meta({ update: "restart", help: "pool: seconds idle after which threads above thread_count stop" })),
  worker_env: z
    .array(envName)
    .max(256)
    .default([])
    .meta(meta({ update: "restart", help: "process: environment variables passed to worker processes (comma-separated)" })),
  python: optionalPath.meta(
    meta({
      update: "restart",
      help: "the Python interpreter of a .py app, e.g. .venv/bin/python (default: $ANYSERVE_PYTHON, else python3)",
    }),
  ),
});

export const resources = z.strictObject({
  cpu_cores: z
    .number()
    .min(0.1)
    .max(4096)
    .nullable()
    .default(null)
    .meta(meta({ update: "restart", flag: false, help: "CPU cores per replica" })),
  memory_mb: z
    .number()
    .int()
    .min(MIN_REPLICA_MEMORY_MB)
    .max(16 * 1024 * 1024)
    .nullable()
    .default(null)
    .meta(meta({ update: "restart", help: "heap limit per worker thread or process, MB" })),
  gpu_count: z
    .number()
    .int()
    .min(0)
    .max(64)
    .nullable()
    .default(null)
    .meta(meta({ update: "restart", flag: false, help: "GPUs per replica" })),
});

export const performance = z.strictObject({
  queue_size: z
    .number()
    .int()
    .min(0)
    .max(10_000_000)
    .default(1000)
    .meta(meta({ update: "restart", help: "requests that may wait per capability beyond those running; more get 503 QUEUE_FULL" })),
  timeout: seconds.default(30).meta(meta({ update: "restart", help: "seconds a request may run at most" })),
  batch_size: positiveInt(65_536)
    .nullable()
    .default(null)
    .meta(meta({ update: "restart", help: "largest batch for {batch: true} handlers (default: no batching)" })),
  batch_wait_ms: z
    .number()
    .min(0)
    .max(60_000)
    .default(5)
    .meta(meta({ update: "restart", help: "longest a batch waits to fill after its first request, ms" })),
  max_body_mb: positiveInt(2048)
    .default(64)
    .meta(meta({ update: "restart", help: "largest request body, MB" })),
  max_buffered_mb: positiveInt(1_048_576)
    .default(1024)
    .meta(
      meta({
        update: "restart",
        help: "request bodies the replica holds at once over all its requests, MB (503 SERVER_OVERLOADED past it)",
      }),
    ),
  abort_grace: z
    .number()
    .min(0)
    .max(3600)
    .default(1)
    .meta(meta({ update: "restart", help: "seconds a worker may ignore an abort before it is terminated and replaced" })),
  write_timeout: writeTimeout.default(30).meta(
    meta({
      update: "restart",
      help: "seconds a client of the replica's own REST or gRPC port may take none of its answer before it is cut (the call is cancelled)",
    }),
  ),
});

export const tls = z.strictObject({
  cert: optionalPath.meta(
    meta({
      update: "restart",
      flag: "tls-cert",
      help: "serve REST, frames and gRPC over TLS with this certificate chain (PEM); needs tls.key",
    }),
  ),
  key: optionalPath.meta(meta({ update: "restart", flag: "tls-key", help: "the private key of tls.cert (PEM)" })),
  ca: optionalPath.meta(
    meta({
      update: "restart",
      flag: "tls-ca",
      help: "CA bundle (PEM) trusted for the API server and other replicas, besides the system's (under up: api_server.tls_ca)",
    }),
  ),
});
