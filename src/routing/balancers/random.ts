/**
 * Uniform random: every candidate equally likely on each pick. Pick it when there are many
 * gateways (no shared rotation to keep in step, no counts to go stale) and requests are
 * similar; it is stateless and cheap, but unlike power-of-two it does not steer away from a
 * busy replica.
 */
import type { ReplicaEntry } from "../registry.js";
import type { Balancer } from "./base.js";

export class RandomBalancer implements Balancer {
  readonly name = "random";
  readonly #rand: () => number;

  /** `rand` returns a number in [0, 1); injectable for deterministic tests. */
  constructor(rand: () => number = Math.random) {
    this.#rand = rand;
  }

  pick(candidates: readonly ReplicaEntry[]): ReplicaEntry {
    const n = candidates.length;
    const i = Math.floor(this.#rand() * n);
    // Guards an injected source that can return exactly 1 (or more).
    return candidates[i < n ? i : n - 1]!;
  }
}
