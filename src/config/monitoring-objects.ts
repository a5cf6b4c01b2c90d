/**
 * A service's `monitoring` section (metrics, heartbeats, when an unhealthy replica is replaced) and
 * its `object_store` section (where and how much its replicas keep of the objects they pass by
 * reference); the deployment file's top-level `object_store` is the latter's defaults. schema.ts
 * composes them.
 *
 * @example
 * ```ts
 * monitoring.parse({}).health_check_interval; // 10
 * ```
 */
import { z } from "zod";
import { meta, optionalPath, positiveInt, seconds } from "./primitives.js";

export const monitoring = z.strictObject({
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

export const objectStore = z.strictObject({
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
