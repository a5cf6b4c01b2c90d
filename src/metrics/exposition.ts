/**
 * Prometheus exposition: each process (API server, replica) owns one prom-client `Registry` — not
 * the library's global one, so several servers in one process (tests, the Environment API) keep
 * their numbers apart — and serves it at `GET /metrics` in the text format. Process CPU and memory
 * come from prom-client's default collectors (`process_cpu_seconds_total`,
 * `process_resident_memory_bytes`, …) with the `anyserve_` prefix.
 */
import { collectDefaultMetrics, Registry } from "prom-client";
import type { RouteHandler } from "../frontend/rest.js";

/** A registry with the process collectors and `labels` on every series (e.g. `{replica: "chat-0"}`). */
export function createMetricsRegistry(labels: Record<string, string> = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry, prefix: "anyserve_" });
  return registry;
}

/** `GET /metrics`: the registry in Prometheus text format. */
export function metricsRoute(registry: Registry): RouteHandler {
  return async (_req, res) => {
    const text = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-cache" });
    res.end(text);
  };
}
