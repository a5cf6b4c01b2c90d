/**
 * Helpers on a query's candidates, for the gateway's forwarder and the direct client: warm
 * replicas first, and the reasons each unavailable one is out (for the NO_READY_REPLICA message).
 */
import { matches, type CapabilityMap } from "../protocol/capability.js";
import type { ReplicaEntry } from "./registry.js";

/** What {@link describeUnavailable} asks of the gateway's outlier detector. */
export interface EjectionState {
  isEjected(replicaId: string): boolean;
}

/** What {@link describeUnavailable} asks of the gateway's circuit breakers. */
export interface CircuitState {
  blocks(replicaId: string, key: string): boolean;
}

/** Why each candidate is out, for the NO_READY_REPLICA message. */
export function describeUnavailable(candidates: ReplicaEntry[], outliers: EjectionState, circuits: CircuitState, key: string): string {
  return candidates
    .map((e) => {
      const why = !e.available
        ? "draining"
        : !e.healthy
          ? `unhealthy (${e.probeFailures} failed health checks${e.probeError ? `: ${e.probeError}` : ""})`
          : outliers.isEjected(e.replicaId)
            ? "ejected after consecutive failures"
            : circuits.blocks(e.replicaId, key)
              ? "circuit open"
              : "ready";
      return `${e.replicaId} ${why}`;
    })
    .join("; ");
}

const allWarmCache = new WeakMap<ReplicaEntry, boolean>();

/** Entries are replaced, never mutated, when their states change, so this is cached per entry. */
function allWarm(e: ReplicaEntry): boolean {
  let v = allWarmCache.get(e);
  if (v === undefined) allWarmCache.set(e, (v = e.capabilities.every((c) => c.state === "warm")));
  return v;
}

/**
 * Warm replicas first: a cold (lazy) capability makes its first request wait for workers to
 * start. Cold ones are used when no warm one matches; failed ones only when nothing else does
 * (they answer CAPABILITY_FAILED with the reason).
 */
export function preferWarm(entries: ReplicaEntry[], query: CapabilityMap): ReplicaEntry[] {
  if (entries.every(allWarm)) return entries;
  const warm: ReplicaEntry[] = [];
  const cold: ReplicaEntry[] = [];
  for (const e of entries) {
    let best: string | undefined;
    for (const c of e.capabilities) {
      if (!matches(c.capability, query)) continue;
      if (c.state === "warm") {
        best = "warm";
        break;
      }
      if (c.state === "cold") best = "cold";
    }
    if (best === "warm") warm.push(e);
    else if (best === "cold") cold.push(e);
  }
  return warm.length > 0 ? warm : cold.length > 0 ? cold : entries;
}
