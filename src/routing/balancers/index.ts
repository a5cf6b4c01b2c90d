/** The balancing strategies by name. Unknown names get an error listing the valid ones. */
import type { Balancer } from "./base.js";
import { ConsistentHashBalancer } from "./consistent-hash.js";
import { FirstAvailableBalancer } from "./first-available.js";
import { LeastRequestsBalancer } from "./least-requests.js";
import { PowerOfTwoBalancer } from "./power-of-two.js";
import { RandomBalancer } from "./random.js";
import { RoundRobinBalancer } from "./round-robin.js";

// Same names, same order as BALANCING in src/config/schema.ts, plus first_available
// (what `load_balancing: false` selects).
const FACTORIES: Record<string, () => Balancer> = {
  power_of_two: () => new PowerOfTwoBalancer(),
  round_robin: () => new RoundRobinBalancer(),
  random: () => new RandomBalancer(),
  least_requests: () => new LeastRequestsBalancer(),
  consistent_hash: () => new ConsistentHashBalancer(),
  first_available: () => new FirstAvailableBalancer(),
};

export const BALANCER_NAMES: readonly string[] = Object.freeze(Object.keys(FACTORIES));

export function createBalancer(name = "power_of_two"): Balancer {
  const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!factory) {
    throw new TypeError(`unknown balancing strategy '${name}': expected one of ${BALANCER_NAMES.join(", ")}`);
  }
  return factory();
}

export type { Balancer, BalanceContext } from "./base.js";
export { ConsistentHashBalancer } from "./consistent-hash.js";
export { FirstAvailableBalancer } from "./first-available.js";
export { LeastRequestsBalancer } from "./least-requests.js";
export { PowerOfTwoBalancer } from "./power-of-two.js";
export { RandomBalancer } from "./random.js";
export { RoundRobinBalancer } from "./round-robin.js";
