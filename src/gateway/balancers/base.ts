/**
 * A balancing strategy chooses one replica among candidates that are already known to be
 * available: health, draining and circuit state are decided before a strategy is asked
 * (availability is separate from selection).
 */
import type { ReplicaEntry } from "../registry.js";

export interface BalanceContext {
  /** An affinity key (for hashing strategies), when the request carries one. */
  key?: string;
}

export interface Balancer {
  readonly name: string;
  /** Picks one of `candidates` (never empty). */
  pick(candidates: readonly ReplicaEntry[], ctx?: BalanceContext): ReplicaEntry;
}
