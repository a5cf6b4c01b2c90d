/**
 * What `multi` and `pool` share: a WorkerGroup of worker threads, each loading the app itself.
 */
import { AnyServeError } from "../errors.js";
import type { ChunkSink } from "../protocol/call.js";
import type { EncodedBody } from "../protocol/types.js";
import type { ExecutionStrategy, StrategyName, StrategyOptions, StrategyStats } from "./base.js";
import type { SpawnWorker } from "./handle.js";
import type { BatchOutcome, Task, TaskHooks } from "./task.js";
import { ThreadHandle } from "./thread-handle.js";
import { WorkerGroup } from "./worker-group.js";
import type { ObjectStoreOptions } from "../objects/types.js";
import type { CancelSignal } from "../util/cancel.js";

/**
 * Jobs a worker holds at once: one running and one in its inbox, so it never idles on a round
 * trip; up to 64 while the handler runs in under 1 ms on average, where the hop, not balance,
 * bounds throughput (worker-group.ts).
 */
export const PIPELINE_DEPTH = { normal: 2, cheap: 64 };

/** A strategy over a WorkerGroup; `multi`, `pool` and `process` differ only in sizes and spawn. */
export class GroupStrategy implements ExecutionStrategy {
  readonly name: StrategyName;
  readonly #group: WorkerGroup;
  readonly #stopExtra: (() => Promise<void>) | undefined;

  constructor(name: StrategyName, group: WorkerGroup, stopExtra?: () => Promise<void>) {
    this.name = name;
    this.#group = group;
    this.#stopExtra = stopExtra;
  }

  get capacity(): number {
    return this.#group.capacity;
  }

  get concurrency(): number {
    return this.#group.maxWorkers;
  }

  start(): Promise<void> {
    return this.#group.start();
  }

  submit(task: Task, signal: CancelSignal, hooks?: TaskHooks): Promise<EncodedBody> {
    return this.#group.run("infer", [task], [signal], hooks) as Promise<EncodedBody>;
  }

  async stream(task: Task, signal: CancelSignal, onChunk: ChunkSink, hooks?: TaskHooks): Promise<void> {
    await this.#group.run("stream", [task], [signal], hooks, onChunk);
  }

  submitBatch(tasks: Task[], signals: CancelSignal[], hooks?: TaskHooks): Promise<BatchOutcome[]> {
    return this.#group.run("batch", tasks, signals, hooks) as Promise<BatchOutcome[]>;
  }

  async stop(): Promise<void> {
    await this.#group.stop();
    await this.#stopExtra?.();
  }

  stats(): StrategyStats {
    return this.#group.stats();
  }
}

/** The replica's object store as plain data a worker can open again (ctx.objects in workers), if it has one. */
export function workerStoreConfig(store: unknown): ObjectStoreOptions | undefined {
  const s = store as { workerConfig?: () => ObjectStoreOptions } | undefined;
  return typeof s?.workerConfig === "function" ? s.workerConfig() : undefined;
}

export function requireAppSpec(name: StrategyName, o: StrategyOptions): string {
  if (!o.appSpec) {
    throw new AnyServeError(
      "INTERNAL",
      `strategy '${name}' loads the app in each worker and needs its module path: start the replica with --app FILE[:export] (startReplica({appSpec}))`,
    );
  }
  return o.appSpec;
}

export function threadSpawner(name: StrategyName, o: StrategyOptions): SpawnWorker {
  const appSpec = requireAppSpec(name, o);
  const objects = workerStoreConfig(o.env.objects);
  return (worker) =>
    new ThreadHandle(worker, {
      appSpec,
      handler: o.handler,
      replicaId: o.env.replicaId,
      apiServer: o.apiServer,
      memoryMb: o.memoryMb,
      objects,
    });
}

export function threadGroup(name: StrategyName, o: StrategyOptions, min: number, max: number): WorkerGroup {
  return new WorkerGroup({
    name,
    kind: "thread",
    spawn: threadSpawner(name, o),
    min,
    max,
    depth: PIPELINE_DEPTH,
    graceMs: o.graceMs,
    startRetries: o.startRetries,
    idleMs: o.poolIdleMs,
    logger: o.env.logger,
    onFailed: o.onFailed,
  });
}
