/**
 * What `multi`, `pool` and `process` share: the options of a WorkerGroup, and the worker threads
 * that `multi` and `pool` spawn (each loads the app itself).
 */
import { AnyServeError } from "../errors.js";
import type { ExecutionOptions, StrategyName } from "./base.js";
import type { SpawnWorker } from "./handle.js";
import { ThreadHandle } from "./thread-handle.js";
import type { GroupOptions } from "./worker-group.js";
import type { ObjectStoreOptions } from "../objects/types.js";

/**
 * Jobs a worker holds at once: one running and one in its inbox, so it never idles on a round
 * trip; up to 64 while the handler runs in under 1 ms on average, where the hop, not balance,
 * bounds throughput (worker-group.ts).
 */
export const PIPELINE_DEPTH = { normal: 2, cheap: 64 };

/** The replica's object store as plain data a worker can open again (ctx.objects in workers), if it has one. */
export function workerStoreConfig(store: unknown): ObjectStoreOptions | undefined {
  const s = store as { workerConfig?: () => ObjectStoreOptions } | undefined;
  return typeof s?.workerConfig === "function" ? s.workerConfig() : undefined;
}

export function requireAppSpec(name: StrategyName, o: ExecutionOptions): string {
  if (!o.appSpec) {
    throw new AnyServeError(
      "INTERNAL",
      `strategy '${name}' loads the app in each worker and needs its module path: start the replica with --app FILE[:export] (startReplica({appSpec}))`,
    );
  }
  return o.appSpec;
}

export function threadSpawner(name: StrategyName, o: ExecutionOptions): SpawnWorker {
  const appSpec = requireAppSpec(name, o);
  const objects = workerStoreConfig(o.env.objects);
  return (worker) =>
    new ThreadHandle(worker, {
      appSpec,
      replicaId: o.env.replicaId,
      apiServer: o.apiServer,
      callerAuth: o.callerAuth,
      memoryMb: o.memoryMb,
      objects,
      service: o.service,
    });
}

/** A group's options from the execution options: `min` to `max` workers made by `spawn`. */
export function groupOptions(name: StrategyName, o: ExecutionOptions, spawn: SpawnWorker, min: number, max: number): GroupOptions {
  return {
    name,
    kind: name === "process" ? "process" : "thread",
    spawn,
    min,
    max,
    depth: PIPELINE_DEPTH,
    graceMs: o.graceMs,
    startRetries: o.startRetries,
    idleMs: o.poolIdleMs,
    logger: o.env.logger,
  };
}
