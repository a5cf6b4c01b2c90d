/** How the deployment file's `api_server` block becomes the API server's resilience settings. */
import type { ResilienceOptions } from "../gateway/forwarder.js";
import type { PolicyFields } from "../gateway/policies.js";
import type { ApiServerConfig, ServiceConfig } from "../config/schema.js";

export function resilienceOf(a: ApiServerConfig): ResilienceOptions {
  const o = a.outlier_detection;
  const c = a.circuit_breaker;
  return {
    maxRetries: a.failover.max_retries,
    retryBudget: { ratio: a.failover.retry_budget_ratio, minPerSecond: a.failover.min_retries_per_second },
    outlier: {
      consecutiveFailures: o.consecutive_failures,
      baseEjectionMs: o.base_ejection_time * 1000,
      maxEjectionMs: o.max_ejection_time * 1000,
      maxEjectionPercent: o.max_ejection_percent,
    },
    circuit: { failureRatio: c.failure_ratio, minRequests: c.min_requests, windowMs: c.window * 1000, halfOpenMs: c.half_open_time * 1000 },
  };
}

/** A service's routing policy fields (balancing, failover, health interval, how often load is reported). */
export function policyFieldsOf(cfg: ServiceConfig): PolicyFields {
  return {
    load_balancing: cfg.deployment.load_balancing,
    failover_enabled: cfg.deployment.failover_enabled,
    health_check_interval: cfg.monitoring.health_check_interval,
    enable_metrics: cfg.monitoring.enable_metrics,
    metrics_interval: cfg.autoscaling?.metrics_interval_s,
  };
}
