/**
 * A service's `autoscaling` section on Kubernetes (docs/autoscaling.md § Kubernetes,
 * docs/scale-out.md): an `autoscaling/v2` HorizontalPodAutoscaler on the Deployment, with the same
 * bounds and the same target on the same signal the controller of `up` uses — requests running
 * plus queued per replica. In a cluster that signal is the per-pod metric `anyserve_replica_ongoing`
 * (`anyserve_replica_in_flight + anyserve_replica_queue_depth` of each replica pod, summed over its
 * capabilities), which Prometheus scrapes from the replica pods and a prometheus-adapter rule
 * serves through the custom metrics API; the HPA itself cannot read Prometheus.
 *
 * Refused, with the reason: `min_replicas: 0` (an HPA's minimum is 1, and KEDA's scale to zero would
 * need the rendered API servers to hold requests for a service with no pod, which
 * `anyserve api-server` does not do), no `max_replicas` (its default is the one node's cores, which a
 * cluster has no single value of) and delays beyond an HPA's 3600 s stabilization window.
 *
 * @example
 * ```ts
 * const why = autoscalingRefusals(cfg.autoscaling); // [] when it maps
 * const hpa = horizontalPodAutoscaler(metadata, "anyserve-llm", cfg.autoscaling!);
 * ```
 */
import type { AutoscalingConfig } from "../../config/schema.js";

type ObjectMeta = { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };

/** The per-pod metric the HPA targets, as the prometheus-adapter rule in docs/scale-out.md names it. */
export const ONGOING_METRIC = "anyserve_replica_ongoing";
/** The longest stabilization window an HPA accepts (Kubernetes validates it). */
const MAX_WINDOW_S = 3600;

/** Why `a` cannot be rendered, one `[field, reason]` per field (empty: it maps). */
export function autoscalingRefusals(a: AutoscalingConfig): [string, string][] {
  const out: [string, string][] = [];
  if (a.min_replicas === 0) {
    out.push([
      "min_replicas",
      "0 (scale to zero) is not rendered: an HPA's minimum is 1, and a KEDA ScaledObject would need the API server pods to hold requests for a service with no pod, which `anyserve api-server` does not do — use min_replicas ≥ 1 on Kubernetes",
    ]);
  }
  if (a.max_replicas === null) {
    out.push(["max_replicas", "is required on Kubernetes: its default is the one node's CPU cores, and a cluster has no single node"]);
  }
  for (const k of ["upscale_delay_s", "downscale_delay_s"] as const) {
    if (a[k] > MAX_WINDOW_S) out.push([k, `${a[k]} s is longer than an HPA's stabilization window may be (${MAX_WINDOW_S} s)`]);
  }
  return out;
}

/**
 * The HPA for a service's Deployment `name` (whose `replicas` is then left out: the HPA owns it).
 * `upscale_delay_s` / `downscale_delay_s` → the stabilization windows (the HPA takes the most
 * conservative recommendation over the window, where `up` needs the direction to hold throughout);
 * `look_back_period_s` / `metrics_interval_s` are cluster-wide there (the adapter's rate window, the
 * HPA's 15 s sync period) and are kept as annotations, so the file's values stay visible.
 */
export function horizontalPodAutoscaler(
  metadata: ObjectMeta,
  name: string,
  a: AutoscalingConfig,
): Record<string, unknown> & { apiVersion: string; kind: string; metadata: ObjectMeta } {
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: {
      ...metadata,
      annotations: {
        "anyserve.dev/look-back-period-s": String(a.look_back_period_s),
        "anyserve.dev/metrics-interval-s": String(a.metrics_interval_s),
      },
    },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
      minReplicas: a.min_replicas,
      maxReplicas: a.max_replicas ?? a.min_replicas,
      metrics: [
        {
          type: "Pods",
          pods: { metric: { name: ONGOING_METRIC }, target: { type: "AverageValue", averageValue: String(a.target_ongoing_requests) } },
        },
      ],
      behavior: {
        scaleUp: { stabilizationWindowSeconds: Math.ceil(a.upscale_delay_s) },
        scaleDown: { stabilizationWindowSeconds: Math.ceil(a.downscale_delay_s) },
      },
    },
  };
}
