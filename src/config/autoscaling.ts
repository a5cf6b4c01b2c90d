/**
 * A service's `autoscaling` section (docs/autoscaling.md): the controller's business — every field
 * applies live and none is a replica flag. schema.ts composes it into the service schema (absent by
 * default); the rule min_replicas ≤ max_replicas is service-rules.ts's.
 *
 * @example
 * ```ts
 * autoscaling.parse({ max_replicas: 4 }).target_ongoing_requests; // 2
 * ```
 */
import { z } from "zod";
import { meta } from "./primitives.js";

/**
 * Ray Serve's `autoscaling_config`, with Ray's defaults but for `max_replicas` (Ray's 1 makes an
 * autoscaled deployment that cannot grow): the controller's business, so every field applies live
 * and none is a replica flag. The section is absent (null) by default: `deployment.replicas` runs.
 */
export const autoscaling = z.strictObject({
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
