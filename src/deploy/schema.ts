/**
 * The deployment config: the seed's `ServiceDeploymentConfig`, in the seed's YAML layout
 * (`services.<name>.{deployment, resources, performance}`) plus what anyserve needs (`app`,
 * `batch_wait_ms`, `idle_timeout`, `lazy`, a `monitoring` section, the `api_server` block).
 * One zod schema gives the TypeScript types, the defaults and the errors; `docs/config.md` lists
 * every field. Each field carries how a change applies to a running deployment (`UPDATE_TYPES`).
 */
import { z } from "zod";

export const TARGETS = ["local", "remote_any", "remote_specific", "cluster_group"] as const;
export const STRATEGIES = ["single", "async", "multi", "pool", "process"] as const;
export const BALANCING = ["power_of_two", "round_robin", "random", "least_requests", "consistent_hash", "first_available"] as const;

const positiveInt = (max: number) => z.number().int().min(1).max(max);
const seconds = z.number().positive().max(86_400);
const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 characters of [A-Za-z0-9_.-]");

const deployment = z.strictObject({
  target: z.enum(TARGETS).default("local"),
  target_nodes: z.array(name).max(256).nullable().default(null),
  node_selector: z.record(name, z.string().max(256)).nullable().default(null),
  threading_strategy: z.enum(STRATEGIES).default("single"),
  thread_count: positiveInt(1024).default(1),
  max_thread_count: positiveInt(1024).nullable().default(null),
  thread_pool_size: positiveInt(1024).nullable().default(null),
  replicas: z.number().int().min(0).max(1000).default(1),
  // The seed defaults to false; replicas > 1 that do not share load waste capacity, so true.
  load_balancing: z.union([z.boolean(), z.enum(BALANCING)]).default(true),
  failover_enabled: z.boolean().default(false),
  lazy: z.boolean().default(false),
  idle_timeout: seconds.nullable().default(null),
});

const resources = z.strictObject({
  cpu_cores: z.number().positive().max(4096).nullable().default(null),
  memory_mb: positiveInt(16 * 1024 * 1024)
    .nullable()
    .default(null),
  gpu_count: z.number().int().min(0).max(64).nullable().default(null),
});

const performance = z.strictObject({
  queue_size: positiveInt(10_000_000).default(1000),
  timeout: seconds.default(30),
  batch_size: positiveInt(65_536).nullable().default(null),
  batch_wait_ms: z.number().min(0).max(60_000).default(5),
});

const monitoring = z.strictObject({
  enable_metrics: z.boolean().default(true),
  health_check_interval: seconds.default(10),
  /** Seconds a replica may stay unhealthy (alive, failing readiness probes) before `up` kills and restarts it; null: never. */
  unhealthy_restart_after: seconds.nullable().default(30),
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
  const nodes = d.target_nodes;
  if (d.target === "remote_specific" && (!Array.isArray(nodes) || nodes.length === 0)) {
    ctx.addIssue({
      code: "custom",
      path: ["deployment", "target_nodes"],
      input: nodes ?? null,
      message: "target remote_specific needs at least one node name",
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

/** The sections of a service, by name (also used to list allowed keys in error hints). */
export const SECTION_SCHEMAS = { deployment, resources, performance, monitoring } as const;

export const serviceSchema = z
  .strictObject({
    app: z.string().min(1).max(1024),
    deployment: deployment.default(deployment.parse({})),
    resources: resources.default(resources.parse({})),
    performance: performance.default(performance.parse({})),
    monitoring: monitoring.default(monitoring.parse({})),
  })
  // Cross-field rules run even when other fields failed, so every problem is reported at once.
  .check(z.superRefine(crossFieldRules, { when: () => true }));

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

export const apiServerSchema = z.strictObject({
  host: z.string().min(1).max(255).default("127.0.0.1"),
  port: z.number().int().min(0).max(65_535).default(8080),
  grpc_port: z.number().int().min(0).max(65_535).nullable().default(8081),
  unmatched: z.enum(["error", "delegate"]).default("error"),
  max_delegation_depth: z.number().int().min(0).max(16).default(1),
  request_timeout: seconds.default(60),
  /** Serve REST with the fast ingress (raw sockets + llhttp for the inference routes). */
  fast_ingress: z.boolean().default(false),
  failover: failover.default(failover.parse({})),
  outlier_detection: outlierDetection.default(outlierDetection.parse({})),
  circuit_breaker: circuitBreaker.default(circuitBreaker.parse({})),
});

export const nodeSchema = z.strictObject({
  name: name.default("local"),
  labels: z.record(name, z.string().max(256)).default({}),
  /** Capacity of this machine; defaults are read from the OS (cpus, memory) and 0 GPUs. */
  cpu_cores: z.number().positive().nullable().default(null),
  memory_mb: positiveInt(16 * 1024 * 1024)
    .nullable()
    .default(null),
  gpu_count: z.number().int().min(0).max(64).default(0),
});

export const deploymentFileSchema = z.strictObject({
  api_server: apiServerSchema.default(apiServerSchema.parse({})),
  node: nodeSchema.default(nodeSchema.parse({})),
  services: z.record(name, serviceSchema).refine((s) => Object.keys(s).length > 0, "at least one service is needed"),
});

export type ServiceConfig = z.output<typeof serviceSchema>;
export type ApiServerConfig = z.output<typeof apiServerSchema>;
export type NodeConfig = z.output<typeof nodeSchema>;
export type DeploymentFile = z.output<typeof deploymentFileSchema>;

/**
 * How a changed field applies to a running deployment (Ray's update types):
 * `live` — applied without restarting anything; `restart` — the service's replicas are replaced
 * one by one (rolling), so no request is dropped.
 */
export const UPDATE_TYPES: Record<string, "live" | "restart"> = {
  "deployment.replicas": "live",
  "deployment.load_balancing": "live",
  "deployment.failover_enabled": "live",
  "monitoring.health_check_interval": "live",
  "monitoring.unhealthy_restart_after": "live",
};
