/**
 * Per-service routing policy: which balancing strategy chooses among a service's replicas,
 * whether failed deliveries are retried on another replica, and how often its replicas are
 * probed. `anyserve up`/`apply` set one per service from the deployment file (so a change applies
 * live, without touching the replicas); replicas of services nobody configured get the API
 * server's defaults.
 */
import { createBalancer, type Balancer } from "../routing/balancers/index.js";
import type { ReplicaEntry } from "../routing/registry.js";

export interface ServicePolicy {
  readonly balancer: Balancer;
  /** Retry a request that was not delivered, or got a retryable error, on another replica. */
  readonly failover: boolean;
  /** Health probe period; undefined = the replica's heartbeat interval. */
  readonly healthCheckIntervalMs: number | undefined;
  /** Count this service's requests in the API server's metrics (`monitoring.enable_metrics`). */
  readonly metrics: boolean;
  /**
   * How often its replicas report their load when that is more often than the health probes (an
   * autoscaled service's `metrics_interval_s`); undefined = with the health probes only.
   */
  readonly loadIntervalMs: number | undefined;
}

/** The deployment file's fields a policy is made from (`load_balancing: true` = the default strategy). */
export interface PolicyFields {
  load_balancing: boolean | string;
  failover_enabled: boolean;
  /** Seconds. */
  health_check_interval?: number | undefined;
  /** Default true. */
  enable_metrics?: boolean | undefined;
  /** Seconds between load reports (autoscaling's `metrics_interval_s`). */
  metrics_interval?: number | undefined;
}

/** `true` → power_of_two; `false` → first_available (the seed's "no balancing": one active replica, the rest standby). */
export function balancerName(value: boolean | string): string {
  if (value === true) return "power_of_two";
  if (value === false) return "first_available";
  return value;
}

export function policyOf(fields: PolicyFields): ServicePolicy {
  return {
    balancer: createBalancer(balancerName(fields.load_balancing)),
    failover: fields.failover_enabled,
    healthCheckIntervalMs: fields.health_check_interval === undefined ? undefined : Math.round(fields.health_check_interval * 1000),
    metrics: fields.enable_metrics ?? true,
    loadIntervalMs: fields.metrics_interval === undefined ? undefined : Math.round(fields.metrics_interval * 1000),
  };
}

export class ServicePolicies {
  readonly #byService = new Map<string, ServicePolicy>();
  readonly #default: ServicePolicy;

  constructor(defaults: PolicyFields = { load_balancing: true, failover_enabled: false }) {
    this.#default = policyOf(defaults);
  }

  get default(): ServicePolicy {
    return this.#default;
  }

  /** Sets (or replaces) a service's policy; a balancer keeps its state when its strategy is unchanged. */
  set(service: string, fields: PolicyFields): void {
    const next = policyOf(fields);
    const prev = this.#byService.get(service);
    const balancer = prev && prev.balancer.name === next.balancer.name ? prev.balancer : next.balancer;
    this.#byService.set(service, { ...next, balancer });
  }

  delete(service: string): void {
    this.#byService.delete(service);
  }

  /** The policy for a replica's service (the default when it has none or it was not configured). */
  of(entry: ReplicaEntry): ServicePolicy {
    return (entry.service !== undefined && this.#byService.get(entry.service)) || this.#default;
  }

  /** Service name → strategy, failover, health interval: for /registry and the status API. */
  describe(): Record<string, { load_balancing: string; failover_enabled: boolean; health_check_interval_ms: number | null }> {
    const out: ReturnType<ServicePolicies["describe"]> = {};
    const row = (p: ServicePolicy) => ({
      load_balancing: p.balancer.name,
      failover_enabled: p.failover,
      health_check_interval_ms: p.healthCheckIntervalMs ?? null,
    });
    out["*"] = row(this.#default);
    for (const [name, p] of this.#byService) out[name] = row(p);
    return out;
  }
}
