/**
 * A balancing strategy chooses one replica among candidates that are already known to be
 * available: health, draining and circuit state are decided before a strategy is asked
 * (availability is separate from selection).
 *
 * Strategies run once per request, so `pick` must be cheap: O(n) at most over the
 * candidates, no sorting and no per-call allocation. A strategy may keep state across calls
 * (a rotation counter, a hash cache) but must not assume the candidate list is the same
 * array, the same length or in the same order from one call to the next.
 */
import type { ReplicaEntry } from "../registry.js";

export interface BalanceContext {
  /**
   * An affinity key (for hashing strategies), when the request carries one. Strategies that
   * do not use affinity ignore it; `consistent_hash` falls back to power-of-two choices when
   * it is absent.
   */
  key?: string;
}

export interface Balancer {
  readonly name: string;
  /**
   * Picks one of `candidates` (never empty; the caller guarantees at least one). Returns one
   * of the given entries, never a copy.
   */
  pick(candidates: readonly ReplicaEntry[], ctx?: BalanceContext): ReplicaEntry;
}
