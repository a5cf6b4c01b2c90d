/**
 * The execution strategy interface: how a capability's handler runs. One file per
 * strategy (`single`, `async`, `multi`, `pool`, `process`), all behind this interface and all
 * checked by one conformance suite (test/execution/conformance.ts).
 *
 * A replica has one {@link Execution} for its app; each capability's lane gets its strategy from
 * it. Under `multi`, `pool` and `process` those strategies are views of one set of workers that
 * the capabilities share (workers.ts); under `single` and `async` each capability has its own
 * concurrency on the replica's event loop.
 *
 * A strategy only runs what it is given. Admission — the bounded queue, deadlines, batching,
 * cold starts — is the lane's job (lane.ts), which never submits more than `capacity` jobs at once.
 */
import type { ChunkSink } from "../protocol/call.js";
import type { EncodedBody } from "../protocol/types.js";
import type { RunEnv } from "./run-task.js";
import type { BatchOutcome, Task, TaskHooks } from "./task.js";
import type { CancelSignal } from "../util/cancel.js";

export type StrategyName = "single" | "async" | "multi" | "pool" | "process";

/** Credentials of a worker thread's `ctx.call` (see {@link ExecutionOptions.callerAuth}). */
export interface CallerAuth {
  inferenceToken?: string | undefined;
  ca?: Buffer | undefined;
}

/** What a replica's execution is made with: the app, sizes and limits (the same for all its capabilities). */
export interface ExecutionOptions {
  /** The app and what a Context needs, for strategies that run in this thread. */
  env: RunEnv;
  /** `FILE[:export]` of the app: thread and process workers load it themselves. */
  appSpec?: string | undefined;
  /** The API server, so that workers can offer `ctx.call` themselves. */
  apiServer?: string | readonly string[] | undefined;
  /**
   * What worker threads' `ctx.call`s carry: the deployment's inference token and the CA of its
   * TLS. Threads share the replica's process, so they may hold its secrets; worker processes get
   * none (process-handle.ts): their calls go through the replica (CALL, CALL_STREAM: worker-requests.ts).
   */
  callerAuth?: CallerAuth | undefined;
  /** `thread_count`: concurrency of `async`; threads of `multi`; minimum threads of `pool`; processes of `process`. */
  threads: number;
  /** `max_thread_count` of `pool` (≥ threads). */
  maxThreads?: number | undefined;
  /** `memory_mb`: heap limit per worker thread / process. */
  memoryMb?: number | undefined;
  /** How long a worker may ignore an abort before it is terminated and replaced (ms). */
  graceMs: number;
  /** Consecutive worker start failures tolerated before the strategy gives up. */
  startRetries: number;
  /** `pool`: how long a thread above `threads` may sit idle before it stops (ms). */
  poolIdleMs: number;
  /** `process`: names of environment variables passed to the child (beyond a fixed minimal set). */
  workerEnv?: readonly string[] | undefined;
  /** A class service: the name and constructor arguments each worker builds its instance with. */
  service?: WorkerService | undefined;
}

/** What a worker needs to build a class service as the replica did. */
export interface WorkerService {
  name: string;
  args: unknown[];
}

/** One handler's strategy, made on its own (`createStrategy`; tests and tools). */
export interface StrategyOptions extends ExecutionOptions {
  /** The handler's index in `env.app.handlers` (the same index in every worker's copy). */
  handler: number;
  /** Called when the handler cannot start, or a worker cannot be replaced (start failed `startRetries` times in a row). */
  onFailed?: ((reason: string) => void) | undefined;
}

/** What a replica's capabilities run on: one per replica, made from its strategy name and sizes. */
export interface Execution {
  readonly name: StrategyName;
  /**
   * A strategy for handler `handler` (its index in the app), made when its lane starts: under
   * `single`/`async` one of its own, under the worker strategies a view of the shared workers.
   * `onFailed` is called if the handler later cannot run (its workers cannot be replaced).
   */
  strategy(handler: number, onFailed?: (reason: string) => void): ExecutionStrategy;
  /** The replica's workers as a whole, counted once however many capabilities use them. */
  stats(): StrategyStats;
}

/** Workers by state. `idle` counts warm workers with nothing to do. */
export interface WorkerCounts {
  starting: number;
  warm: number;
  idle: number;
  failed: number;
}

export interface StrategyStats {
  strategy: StrategyName;
  workers: WorkerCounts;
  /** Jobs submitted and not yet answered. */
  inFlight: number;
  /** Jobs waiting inside the strategy for a worker (a thread booting, a worker being replaced). */
  queued: number;
  /** Workers replaced after a crash, a stuck task or an out-of-memory. */
  replaced: number;
}

export interface ExecutionStrategy {
  readonly name: StrategyName;
  /** Jobs it runs at once, or pipelines to its workers, without queuing. */
  readonly capacity: number;
  /** Jobs that actually run at the same time (workers, or async concurrency); ≤ capacity. */
  readonly concurrency: number;
  /** Starts the workers and runs `onStart` in each; rejects when they cannot start (after retries). */
  start(): Promise<void>;
  /** Runs one task. `signal` aborting fires the handler's signal; a worker that ignores it is replaced. */
  submit(task: Task, signal: CancelSignal, hooks?: TaskHooks): Promise<EncodedBody>;
  /**
   * Runs one streaming task; chunks arrive through `onChunk` in order. While `onChunk`'s promise is
   * pending the handler makes no next chunk: an async generator is not pulled, a worker stops
   * producing once its window to the replica is used up (worker-protocol.ts, CREDIT).
   */
  stream(task: Task, signal: CancelSignal, onChunk: ChunkSink, hooks?: TaskHooks): Promise<void>;
  /** Runs the batch handler once on several tasks; `signals[i]` belongs to `tasks[i]`. */
  submitBatch(tasks: Task[], signals: CancelSignal[], hooks?: TaskHooks): Promise<BatchOutcome[]>;
  /** Stops the workers after running `onStop` in each; pending jobs fail with SHUTTING_DOWN. */
  stop(): Promise<void>;
  stats(): StrategyStats;
}
