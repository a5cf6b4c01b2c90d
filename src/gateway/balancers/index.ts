/** The balancing strategies by name. Unknown names get an error listing the valid ones. */
import type { Balancer } from "./base.js";
import { PowerOfTwoBalancer } from "./power-of-two.js";

const FACTORIES: Record<string, () => Balancer> = {
  power_of_two: () => new PowerOfTwoBalancer(),
};

export const BALANCER_NAMES = Object.keys(FACTORIES);

export function createBalancer(name = "power_of_two"): Balancer {
  const factory = FACTORIES[name];
  if (!factory) {
    throw new TypeError(`unknown balancing strategy '${name}': expected one of ${BALANCER_NAMES.join(", ")}`);
  }
  return factory();
}

export type { Balancer, BalanceContext } from "./base.js";
