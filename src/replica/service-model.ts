/**
 * The one log line a replica of a class service writes when it starts: how its instances and
 * threads relate under its strategy, so that what happens to state is said where it is decided
 * (docs/execution.md, "Class services"). A warning when a key's calls may reach different
 * replicas, each with its own state.
 */
import type { ResolvedServiceConfig } from "../config/resolve.js";
import { WORKER_STRATEGIES } from "../execution/index.js";
import type { AnyServe } from "../sdk/app.js";
import { serviceInfo } from "../sdk/service.js";
import type { Logger } from "../util/log.js";

export function logServiceModel(app: AnyServe, config: ResolvedServiceConfig, logger: Logger): void {
  const info = serviceInfo(app);
  if (!info) return;
  const d = config.deployment;
  const strategy = d.threading_strategy;
  const workers = strategy === "pool" ? `${d.thread_count}-${Math.max(d.thread_count, d.max_thread_count)}` : String(d.thread_count);
  const unit = strategy === "process" ? "processes" : "threads";
  const fields = { service: info.name, class: info.className, strategy, affinity: info.affinity };
  let model: string;
  if (!WORKER_STRATEGIES.has(strategy)) {
    model = `one instance on the replica's event loop, shared by every method (${strategy}: ${strategy === "single" ? "one call per method at a time" : `up to ${d.thread_count} calls per method at once`})`;
  } else if (info.affinity === "key") {
    model = `${workers} ${unit} (${strategy}) with one instance each, shared by every method; a call runs where its first argument is owned, so calls with the same first argument meet the same instance (calls without arguments run anywhere). Set static affinity = "instance" for state not keyed by the first argument`;
  } else if (info.affinity === "instance") {
    model = `every call runs on one of the ${workers} ${unit} (${strategy}), whose instance holds all the state (static affinity = "instance"); the others stay idle for this service`;
  } else {
    model = `calls run on any of the ${workers} ${unit} (${strategy}), each with its own instance (static affinity = "none": no state kept between calls)`;
  }
  logger.info(fields, `class service '${info.name}' (${info.className}): ${model}`);
  const balancing = d.load_balancing === true ? "power_of_two" : d.load_balancing === false ? "first_available" : d.load_balancing;
  if (info.affinity === "key" && d.replicas > 1 && balancing !== "consistent_hash" && balancing !== "first_available") {
    logger.warn(
      { ...fields, replicas: d.replicas, load_balancing: balancing },
      `class service '${info.name}': its ${d.replicas} replicas are balanced by ${balancing}, so calls with the same first argument may reach different replicas, each with its own state; set deployment.load_balancing: consistent_hash (the service proxies send the first argument as the affinity key)`,
    );
  }
}
