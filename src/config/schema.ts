/**
 * The deployment config: the seed's `ServiceDeploymentConfig`, in the seed's YAML layout
 * (`services.<name>.{deployment, resources, performance, monitoring}`) plus what anyserve needs
 * (`app`, `object_store`, `autoscaling`, batching wait, lazy workers, the `api_server` and `node` blocks).
 *
 * This zod schema is the one source of every field's type, range and default, and (in each
 * field's metadata, {@link FieldMeta}) of how a change applies to a running deployment and which
 * `anyserve start` flag sets it. Everything else is derived from it: the TypeScript types, the
 * validation errors of `up`/`apply`/`validate`, the replica's start flags (`src/cli/config-flags.ts`),
 * the document `up` hands to each replica (`replica.ts` here) and the execution settings
 * (`resolve.ts`). `docs/config.md` lists every field; `test/config/docs.test.ts` keeps it in step.
 */
import { z } from "zod";

export const TARGETS = ["local", "remote_any", "remote_specific", "cluster_group"] as const;
export const STRATEGIES = ["single", "async", "multi", "pool", "process"] as const;
export const BALANCING = ["power_of_two", "round_robin", "random", "least_requests", "consistent_hash", "first_available"] as const;

/**
 * What a field's metadata says besides its type.
 * - `update`: how a change applies to a running deployment (Ray's update types): `live` without
 *   restarting anything; `restart` by replacing the service's replicas one at a time (rolling).
 * - `flag`: the `anyserve start` flag that sets it: the field's name with `-` for `_` unless given;
 *   `false` when the field is not the replica's to decide (placement, balancing). A boolean that
 *   defaults to true is set off with `--no-<flag>`.
 * - `help`: one line for `--help`.
 */
export interface FieldMeta {
  update: "live" | "restart";
  flag?: string | false;
  help: string;
}

const meta = (m: FieldMeta) => m as unknown as Record<string, unknown>;
const positiveInt = (max: number) => z.number().int().min(1).max(max);
/** Seconds: 1 ms to a day. */
const seconds = z.number().min(0.001).max(86_400);
/**
 * `write_timeout`: seconds a client may leave its answer unread — its socket full, nothing taken —
 * before the connection (or gRPC stream) is cut and the call cancelled (util/write-guard.ts).
 */
const writeTimeout = z.number().min(0.1).max(86_400);
const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 characters of [A-Za-z0-9_.-]");
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "expected an environment variable name");

/**
 * The least memory a replica runs in, MB: its heap limit when `memory_mb` is set (a Node process
 * serving an app needs ~40 MB of heap) and what placement counts per replica when it is not.
 */
export const MIN_REPLICA_MEMORY_MB = 64;

/** A file or directory path, or null (PEM files, the Python interpreter, the object store). */
const optionalPath = z.string().min(1).max(4096).nullable().default(null);

const deployment = z.strictObject({
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

const resources = z.strictObject({
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

const performance = z.strictObject({
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

const monitoring = z.strictObject({
  enable_metrics: z
    .boolean()
    .default(true)
    .meta(meta({ update: "restart", flag: "metrics", help: "Prometheus metrics, served at GET /metrics" })),
  health_check_interval: z
    .number()
    .min(0.1)
    .max(3600)
    .default(10)
    .meta(meta({ update: "live", help: "seconds between heartbeats (and the API server's probes)" })),
  unhealthy_restart_after: seconds
    .nullable()
    .default(30)
    .meta(meta({ update: "live", flag: false, help: "seconds a replica may stay unhealthy before up replaces it" })),
});

const objectStore = z.strictObject({
  dir: optionalPath.meta(
    meta({
      update: "restart",
      flag: "object-store",
      help: "object store directory (default: under `up`, the deployment's own; alone, /tmp/anyserve-objects)",
    }),
  ),
  max_object_mb: positiveInt(1 << 20)
    .default(2048)
    .meta(meta({ update: "restart", flag: "object-max-mb", help: "largest object, MB" })),
  max_total_gb: z
    .number()
    .min(0.001)
    .max(1 << 20)
    .default(10)
    .meta(meta({ update: "restart", flag: "object-store-max-gb", help: "cap on all objects in the store directory, GB" })),
  cache_remote: z
    .boolean()
    .default(false)
    .meta(meta({ update: "restart", flag: "object-cache", help: "keep local copies of objects fetched from other replicas" })),
});

/**
 * Ray Serve's `autoscaling_config`, with Ray's defaults but for `max_replicas` (Ray's 1 makes an
 * autoscaled deployment that cannot grow): the controller's business, so every field applies live
 * and none is a replica flag. The section is absent (null) by default: `deployment.replicas` runs.
 */
const autoscaling = z.strictObject({
  min_replicas: z
    .number()
    .int()
    .min(0)
    .max(1000)
    .default(1)
    .meta(
      meta({
        update: "live",
        flag: false,
        help: "fewest replicas; 0: the service scales to zero and its first request waits while one starts",
      }),
    ),
  max_replicas: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .nullable()
    .default(null)
    .meta(
      meta({
        update: "live",
        flag: false,
        help: "most replicas (default: the node's CPU cores, at least min_replicas); the node's capacity caps it too",
      }),
    ),
  target_ongoing_requests: z
    .number()
    .min(0.1)
    .max(100_000)
    .default(2)
    .meta(meta({ update: "live", flag: false, help: "requests running or queued per replica the autoscaler aims at" })),
  upscale_delay_s: z
    .number()
    .min(0)
    .max(86_400)
    .default(30)
    .meta(meta({ update: "live", flag: false, help: "seconds more replicas must have been wanted before they start" })),
  downscale_delay_s: z
    .number()
    .min(0)
    .max(86_400)
    .default(600)
    .meta(meta({ update: "live", flag: false, help: "seconds fewer replicas must have been wanted before one leaves" })),
  look_back_period_s: z
    .number()
    .min(0.1)
    .max(86_400)
    .default(30)
    .meta(meta({ update: "live", flag: false, help: "seconds of load samples averaged into each decision" })),
  metrics_interval_s: z
    .number()
    .min(0.1)
    .max(3600)
    .default(10)
    .meta(meta({ update: "live", flag: false, help: "seconds between load reports of each replica (and decisions)" })),
});

/** A PEM file, relative to the deployment file (null: none). */

const tls = z.strictObject({
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

type Issue = { code: "custom"; path: PropertyKey[]; input: unknown; message: string };

function crossFieldRules(raw: unknown, ctx: { addIssue(issue: Issue): void }): void {
  const section = (k: string): Record<string, unknown> => {
    const v = raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>)[k] : undefined;
    return v !== null && typeof v === "object" ? (v as Record<string, unknown>) : {};
  };
  const d = section("deployment");
  const count = typeof d.thread_count === "number" ? d.thread_count : 1;
  for (const key of ["max_thread_count", "thread_pool_size"]) {
    const v = d[key];
    if (typeof v === "number" && v < count) {
      ctx.addIssue({ code: "custom", path: ["deployment", key], input: v, message: `must be at least thread_count (${count})` });
    }
  }
  const a = section("autoscaling");
  if (typeof a.max_replicas === "number" && a.max_replicas < (typeof a.min_replicas === "number" ? a.min_replicas : 1)) {
    ctx.addIssue({
      code: "custom",
      path: ["autoscaling", "max_replicas"],
      input: a.max_replicas,
      message: `must be at least min_replicas (${typeof a.min_replicas === "number" ? a.min_replicas : 1})`,
    });
  }
  const nodes = d.target_nodes;
  if (d.target === "remote_specific" && (!Array.isArray(nodes) || nodes.length === 0)) {
    ctx.addIssue({
      code: "custom",
      path: ["deployment", "target_nodes"],
      input: nodes ?? null,
      message: "target remote_specific needs at least one node name",
    });
  }
  const t = section("tls");
  if ((typeof t.cert === "string") !== (typeof t.key === "string")) {
    ctx.addIssue({
      code: "custom",
      path: ["tls", typeof t.cert === "string" ? "key" : "cert"],
      input: null,
      message: "tls.cert and tls.key go together: give both or neither",
    });
  }
  if (d.target === "cluster_group" && (d.node_selector === undefined || d.node_selector === null)) {
    ctx.addIssue({
      code: "custom",
      path: ["deployment", "node_selector"],
      input: null,
      message: "target cluster_group needs a node_selector (labels of the group)",
    });
  }
}

/** The sections of a service, by name. */
export const SECTION_SCHEMAS = { deployment, resources, performance, monitoring, object_store: objectStore, tls, autoscaling } as const;
export type SectionName = keyof typeof SECTION_SCHEMAS;
export const SECTION_NAMES = Object.keys(SECTION_SCHEMAS) as SectionName[];

const sections = {
  deployment: deployment.default(deployment.parse({})),
  resources: resources.default(resources.parse({})),
  performance: performance.default(performance.parse({})),
  monitoring: monitoring.default(monitoring.parse({})),
  object_store: objectStore.default(objectStore.parse({})),
  tls: tls.default(tls.parse({})),
  // Absent: no autoscaling (`deployment.replicas` runs); `autoscaling: {}` turns it on with the defaults.
  autoscaling: autoscaling.nullable().default(null),
};

/** `app`: the module serving the service, `FILE[:export]` (an AnyServe app or a service class). */
const app = z
  .string()
  .min(1)
  .max(1024)
  .meta(meta({ update: "restart", help: "the app module, FILE[:export] (.ts loads directly), or onnx:FILE.onnx to serve an ONNX model" }));

// Cross-field rules run even when other fields failed, so every problem is reported at once.
const withRules = <T extends z.ZodType>(s: T) => s.check(z.superRefine(crossFieldRules, { when: () => true }));

export const serviceSchema = withRules(z.strictObject({ app, ...sections }));

/** Failover retries (Finagle-style budget: retries ≤ ratio × requests + a floor per second). */
const failover = z.strictObject({
  max_retries: z.number().int().min(0).max(10).default(2),
  retry_budget_ratio: z.number().min(0).max(10).default(0.2),
  min_retries_per_second: z.number().min(0).max(100_000).default(10),
});

/** Envoy's outlier detection defaults. */
const outlierDetection = z.strictObject({
  consecutive_failures: positiveInt(1_000_000).default(5),
  base_ejection_time: seconds.default(30),
  max_ejection_time: seconds.default(300),
  max_ejection_percent: z.number().min(0).max(100).default(10),
});

/** Moleculer's circuit breaker defaults. */
const circuitBreaker = z.strictObject({
  failure_ratio: z.number().gt(0).max(1).default(0.5),
  min_requests: positiveInt(1_000_000).default(20),
  window: seconds.default(60),
  half_open_time: seconds.default(10),
});

export const apiServerSchema = z
  .strictObject({
    host: z.string().min(1).max(255).default("127.0.0.1"),
    port: z.number().int().min(0).max(65_535).default(8080),
    grpc_port: z.number().int().min(0).max(65_535).nullable().default(8081),
    unmatched: z.enum(["error", "delegate"]).default("error"),
    max_delegation_depth: z.number().int().min(0).max(16).default(1),
    request_timeout: seconds.default(60),
    /** Serve REST with the fast ingress (raw sockets + llhttp for the inference routes). */
    fast_ingress: z.boolean().default(false),
    /** Seconds a client may take none of its answer (a stream or a whole one) before it is cut. */
    write_timeout: writeTimeout.default(30),
    /** Replicas the registry holds at most (a new id past it: 507 REGISTRY_FULL). */
    max_replicas: z.number().int().min(1).max(1_000_000).default(1024),
    /** New replica ids accepted per second, and in one burst (past it: 429 REGISTRATION_RATE_LIMITED). */
    registration_rate: z.number().min(0.1).max(100_000).default(100),
    /** Serve REST and gRPC over TLS: certificate chain and key (PEM files, relative to the deployment file). */
    tls_cert: optionalPath,
    tls_key: optionalPath,
    /** CA bundle trusted for replicas' certificates (and handed to `up`'s replicas for the API server's). */
    tls_ca: optionalPath,
    /**
     * Seconds after start during which a capability nothing matches is 503 `REGISTRY_WARMING_UP`
     * (retryable) rather than 404: replicas re-register after an API server restart. `up` ends it
     * early once its deployment is applied. 0: no warm-up.
     */
    warmup: z.number().min(0).max(3_600).default(15),
    /**
     * Seconds a replica may hold requests without any progress (an answer, a stream chunk, a passed
     * probe) before it is passed over while another can serve (a stopped or wedged process). 0: off.
     */
    stall_timeout: z.number().min(0).max(3_600).default(5),
    failover: failover.default(failover.parse({})),
    outlier_detection: outlierDetection.default(outlierDetection.parse({})),
    circuit_breaker: circuitBreaker.default(circuitBreaker.parse({})),
  })
  .refine((a) => (a.tls_cert === null) === (a.tls_key === null), {
    message: "tls_cert and tls_key go together: give both or neither",
    path: ["tls_key"],
  });

export const nodeSchema = z.strictObject({
  name: name.default("local"),
  labels: z.record(name, z.string().max(256)).default({}),
  /** Capacity of this machine; defaults are read from the OS (cpus, memory) and nvidia-smi (GPUs). */
  cpu_cores: z.number().min(0.001).max(1_000_000).nullable().default(null),
  memory_mb: positiveInt(64 * 1024 * 1024)
    .nullable()
    .default(null),
  /** null: as many as `nvidia-smi -L` lists (none without it). */
  gpu_count: z.number().int().min(0).max(1024).nullable().default(null),
});

export const deploymentFileSchema = z.strictObject({
  api_server: apiServerSchema.default(apiServerSchema.parse({})),
  node: nodeSchema.default(nodeSchema.parse({})),
  /**
   * Defaults of every service's `object_store` section: `parseDeployment` merges them into each
   * service before validation (a service's own values win).
   */
  object_store: objectStore.partial().default({}),
  /**
   * A model repository (docs/models.md), relative to the file: every model in it becomes services
   * (merged in by `loadDeploymentFile`), and the API server answers the OIP repository extension.
   */
  repository: z.string().min(1).max(4096).nullable().default(null),
  services: z.record(name, serviceSchema).refine((s) => Object.keys(s).length > 0, "at least one service is needed"),
});

export type ServiceConfig = z.output<typeof serviceSchema>;
/** A service's config as users write it: `app` and any subset of each section. */
export type ServiceConfigInput = z.input<typeof serviceSchema>;
export type ApiServerConfig = z.output<typeof apiServerSchema>;
export type NodeConfig = z.output<typeof nodeSchema>;
export type ObjectStoreConfig = z.output<typeof objectStore>;
export type AutoscalingConfig = z.output<typeof autoscaling>;
export type DeploymentFile = z.output<typeof deploymentFileSchema>;

/** A field's metadata, or undefined for a path that is not a service field. */
export function fieldMeta(section: SectionName | "app", key?: string): FieldMeta | undefined {
  if (section === "app") return app.meta() as unknown as FieldMeta;
  const shape = SECTION_SCHEMAS[section].shape as Record<string, z.ZodType>;
  return key !== undefined && Object.hasOwn(shape, key) ? (shape[key]!.meta() as unknown as FieldMeta | undefined) : undefined;
}

/** How a changed field (`section.key`, or `app`) applies to a running deployment. */
export function updateTypeOf(field: string): "live" | "restart" {
  const [section, key] = field.split(".") as [SectionName | "app", string | undefined];
  return fieldMeta(section, key)?.update ?? "restart";
}
