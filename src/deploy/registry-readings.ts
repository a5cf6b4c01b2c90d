/**
 * What the deployment controller (controller.ts) reads of its replicas from the registry: each
 * replica's health and load ({@link HealthSource}; the gateway's `Registry` is one), and from them
 * the two measures its autoscalers take per service — requests ongoing at the service's replicas
 * and replicas serving.
 *
 * @example
 * ```ts
 * const load = ongoingOf(registry, tracked.values(), "llm"); // requests running or queued at llm's replicas
 * const up = servingOf(registry, tracked.values(), "llm");
 * ```
 */
import type { ReplicaLoad } from "../routing/registry.js";
import type { ReplicaPhase } from "./replica-handle.js";

/** What the controller reads from the registry (the gateway's `Registry` is one). */
export interface HealthSource {
  get(replicaId: string):
    | {
        healthy: boolean;
        available: boolean;
        probeFailures: number;
        probeError?: string | undefined;
        /** Requests the API server has sent it and not had answered. */
        inFlight: number;
        /** What it reported with its last probe (requests running and queued). */
        load?: ReplicaLoad | undefined;
        /** `inFlight` when it reported that. */
        loadInFlight?: number | undefined;
      }
    | undefined;
  /** Told of registrations, removals, drains and health changes. */
  onRoutingChange(listener: () => void): void;
  /** A replica that dies is taken out at once, not after 3 missed heartbeats. */
  unregister(replicaId: string): boolean;
}

/** A replica as the controller tracks it: what these measures read of it. */
export interface TrackedReplica {
  handle: { spec: { service: string; replicaId: string } };
  phase: ReplicaPhase;
}

/**
 * Requests at the service's replicas that are not leaving. Per replica: those this API server
 * has sent it and not had answered (exact, now), plus those it reported beyond the most this API
 * server had in flight to it while that report was on its way (direct clients, other API servers;
 * as of its last report). A stale report never counts the requests sent through here twice.
 */
export function ongoingOf(registry: HealthSource, replicas: Iterable<TrackedReplica>, service: string): number {
  let sum = 0;
  for (const t of replicas) {
    if (t.handle.spec.service !== service || t.phase === "stopping" || t.phase === "stopped") continue;
    sum += ongoingAt(registry, t.handle.spec.replicaId) ?? 0;
  }
  return sum;
}

/** One replica's ongoing requests as {@link ongoingOf} counts them; undefined when it is not registered. */
export function ongoingAt(registry: HealthSource, replicaId: string): number | undefined {
  const e = registry.get(replicaId);
  if (!e) return undefined;
  const reported = e.load ? (e.load.in_flight ?? 0) + (e.load.queue_depth ?? 0) : 0;
  return e.inFlight + Math.max(0, reported - (e.loadInFlight ?? 0));
}

/** The service's replicas running, healthy and taking requests. */
export function servingOf(registry: HealthSource, replicas: Iterable<TrackedReplica>, service: string): number {
  let n = 0;
  for (const t of replicas) {
    if (t.handle.spec.service !== service || t.phase !== "running") continue;
    const e = registry.get(t.handle.spec.replicaId);
    if (e?.healthy && e.available) n++;
  }
  return n;
}
