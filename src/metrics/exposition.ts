/**
 * Prometheus exposition: each server (API server, replica) owns one prom-client `Registry` — not
 * the library's global one, so several servers in one process (tests, the Environment API) keep
 * their numbers apart — and serves it at `GET /metrics` in the text format, together with the
 * process's CPU and memory from prom-client's default collectors (`process_cpu_seconds_total`,
 * `process_resident_memory_bytes`, …, with the `anyserve_` prefix).
 *
 * The default collectors exist once per process, not once per server: prom-client cannot stop
 * them (each set keeps an event-loop-delay monitor and a GC observer running), so a process that
 * starts and stops servers — a test run, an app using the Environment API — would pile them up.
 * Each server's scrape merges the one process set with its own metrics and labels.
 */
import { collectDefaultMetrics, Registry } from "prom-client";
import type { RouteHandler } from "../util/http.js";

let processCollectors: Registry | undefined;
/** The server registries' labels, applied to the process series too when they are scraped. */
const labelsOf = new WeakMap<Registry, Record<string, string>>();

/** The process-wide default collectors, started on first use. */
function processRegistry(): Registry {
  if (processCollectors === undefined) {
    processCollectors = new Registry();
    collectDefaultMetrics({ register: processCollectors, prefix: "anyserve_" });
  }
  return processCollectors;
}

/** A server's registry with `labels` on every series it exposes (e.g. `{replica: "chat-0"}`). */
export function createMetricsRegistry(labels: Record<string, string> = {}): Registry {
  processRegistry(); // started now, not at the first scrape: the event-loop and GC histograms observe from here
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  labelsOf.set(registry, labels);
  return registry;
}

/** What `GET /metrics` answers: the server's metrics and the process's, with the server's labels. */
export function metricsText(registry: Registry): Promise<string> {
  const merged = Registry.merge([registry, processRegistry()]);
  merged.setDefaultLabels(labelsOf.get(registry) ?? {});
  return merged.metrics();
}

/** `GET /metrics`: the registry in Prometheus text format. */
export function metricsRoute(registry: Registry): RouteHandler {
  return async (_req, res) => {
    const text = await metricsText(registry);
    res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-cache" });
    res.end(text);
  };
}
