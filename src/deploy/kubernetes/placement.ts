/**
 * What a replica pod asks of the cluster's scheduler: the `resources` section as requests and
 * limits, and the `deployment` section's target, target_nodes and node_selector as a nodeSelector
 * and affinities. Kubernetes places the pods; anyserve only says where they may go.
 *
 * @example
 * ```ts
 * const podSpec = { containers: [{ ..., resources: resourcesOf(cfg) }], ...placementOf(ctx, cfg.deployment) };
 * ```
 */
import type { ServiceConfig } from "../../config/schema.js";
import { type Ctx, labelsOf } from "./manifest.js";

/** cpu_cores, memory_mb, gpu_count → requests and limits (equal: the replica gets what it asked for, no more). */
export function resourcesOf(cfg: ServiceConfig): Record<string, Record<string, string>> {
  const r = cfg.resources;
  const both: Record<string, string> = {};
  if (r.cpu_cores !== null) both.cpu = `${Math.round(r.cpu_cores * 1000)}m`;
  if (r.memory_mb !== null) both.memory = `${r.memory_mb}Mi`;
  const limits: Record<string, string> = { ...both };
  if ((r.gpu_count ?? 0) > 0) limits["nvidia.com/gpu"] = String(r.gpu_count);
  return { ...(Object.keys(both).length > 0 ? { requests: both } : {}), ...(Object.keys(limits).length > 0 ? { limits } : {}) };
}

/**
 * target / target_nodes / node_selector → where pods may run:
 * remote_specific → required node affinity on kubernetes.io/hostname; node_selector (and so
 * cluster_group) → nodeSelector; local → required pod affinity to the API server's pods on the same
 * hostname (co-located with it, as `up` runs `local` services beside its API server);
 * remote_any → no constraint.
 */
export function placementOf(ctx: Ctx, d: ServiceConfig["deployment"]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (d.node_selector !== null) out.nodeSelector = { ...d.node_selector };
  const affinity: Record<string, unknown> = {};
  if (d.target_nodes !== null && d.target_nodes.length > 0) {
    affinity.nodeAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [...d.target_nodes] }] }],
      },
    };
  }
  if (d.target === "local") {
    affinity.podAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: labelsOf(ctx, "api-server") }, topologyKey: "kubernetes.io/hostname" },
      ],
    };
  }
  if (Object.keys(affinity).length > 0) out.affinity = affinity;
  return out;
}
