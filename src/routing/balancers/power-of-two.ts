/**
 * Power of two choices: two distinct random candidates, the one with fewer in-flight requests
 * wins (ties go to the first). Close to least-requests in quality, at O(1) cost and without
 * the herding that exact least-requests shows when many gateways share stale counts.
 */
import type { ReplicaEntry } from "../registry.js";
import type { Balancer } from "./base.js";

export class PowerOfTwoBalancer implements Balancer {
  readonly name = "power_of_two";
  readonly #rand: () => number;

  constructor(rand: () => number = Math.random) {
    this.#rand = rand;
  }

  pick(candidates: readonly ReplicaEntry[]): ReplicaEntry {
    const n = candidates.length;
    if (n === 1) return candidates[0]!;
    const i = Math.floor(this.#rand() * n);
    let j = Math.floor(this.#rand() * (n - 1));
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return b.inFlight < a.inFlight ? b : a;
  }
}
