/**
 * First available: every request goes to the first available replica in registration order; the
 * others are standbys that take over when it is draining, unhealthy or ejected. This is the seed's
 * `load_balancing: false` — pick it for a stateful handler that must see all traffic in one place
 * while keeping warm spares.
 */
import type { ReplicaEntry } from "../registry.js";
import type { Balancer } from "./base.js";

export class FirstAvailableBalancer implements Balancer {
  readonly name = "first_available";

  pick(candidates: readonly ReplicaEntry[]): ReplicaEntry {
    return candidates[0]!;
  }
}
