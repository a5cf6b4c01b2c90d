/**
 * Least requests: the candidate with the fewest requests this gateway has in flight. Pick it
 * when request costs vary a lot (long generations next to short ones) and a single gateway,
 * or few, fronts the replicas, so its counts are accurate. With many gateways each sees only
 * its own counts and they may all pile onto the same replica; power-of-two is safer there.
 * Ties rotate, so idle replicas share load rather than the first one taking it all.
 */
import type { ReplicaEntry } from "../registry.js";
import type { Balancer } from "./base.js";

export class LeastRequestsBalancer implements Balancer {
  readonly name = "least_requests";
  /** Where the scan starts; advanced every call so the first of equal minima rotates. */
  #start = 0;

  pick(candidates: readonly ReplicaEntry[]): ReplicaEntry {
    const n = candidates.length;
    let idx = this.#start++ % n;
    let best = candidates[idx]!;
    for (let k = 1; k < n; k++) {
      if (++idx === n) idx = 0;
      const c = candidates[idx]!;
      if (c.inFlight < best.inFlight) best = c;
    }
    return best;
  }
}
