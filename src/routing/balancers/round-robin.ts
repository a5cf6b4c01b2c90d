/**
 * Round robin: each pick takes the next candidate in turn. Pick it when replicas are alike
 * and requests cost about the same, and an exactly even, predictable spread matters more
 * than reacting to load (it ignores in-flight counts, so one slow replica still gets its
 * full share).
 */
import type { ReplicaEntry } from "../registry.js";
import type { Balancer } from "./base.js";

export class RoundRobinBalancer implements Balancer {
  readonly name = "round_robin";
  // A double counts exactly to 2^53, far beyond any process lifetime, so it never wraps.
  #counter = 0;

  pick(candidates: readonly ReplicaEntry[]): ReplicaEntry {
    return candidates[this.#counter++ % candidates.length]!;
  }
}
