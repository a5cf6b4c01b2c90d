/**
 * Strategies that run handlers on the replica's own event loop (`single`, `async`): no copies,
 * no start-up cost, but a handler that blocks the thread blocks the whole replica, and a handler
 * that ignores its AbortSignal cannot be stopped (only thread and process workers can be
 * terminated). The lane keeps at most `capacity` jobs here at once.
 */
import { AnyServeError } from "../errors.js";
import type { EncodedBody } from "../protocol/types.js";
import type { Execution, ExecutionOptions, ExecutionStrategy, StrategyName, StrategyOptions, StrategyStats } from "./base.js";
import { runBatchTask, runHook, runStreamTask, runTask } from "./run-task.js";
import type { BatchOutcome, Task, TaskHooks } from "./task.js";
import type { CancelSignal } from "../util/cancel.js";

/**
 * `single` and `async` for a whole replica: the event loop is its one worker, and each capability
 * gets its own InlineStrategy (its own limit of calls at once, as before workers were shared: a
 * capability that calls another of the same replica and waits for it must not wait behind itself).
 */
export class InlineExecution implements Execution {
  readonly name: StrategyName;
  readonly #capacity: number;
  readonly #o: ExecutionOptions;
  readonly #live = new Set<InlineStrategy>();

  constructor(name: StrategyName, capacity: number, options: ExecutionOptions) {
    this.name = name;
    this.#capacity = capacity;
    this.#o = options;
  }

  strategy(handler: number, onFailed?: (reason: string) => void): ExecutionStrategy {
    const s = new InlineStrategy(this.name, this.#capacity, { ...this.#o, handler, onFailed }, () => this.#live.delete(s));
    this.#live.add(s);
    return s;
  }

  /** The event loop counts as one worker: warm while any capability on it is. */
  stats(): StrategyStats {
    const all = [...this.#live].map((s) => s.stats());
    const warm = all.some((s) => s.workers.warm > 0) ? 1 : 0;
    const inFlight = all.reduce((n, s) => n + s.inFlight, 0);
    return {
      strategy: this.name,
      workers: {
        starting: warm === 0 && all.some((s) => s.workers.starting > 0) ? 1 : 0,
        warm,
        idle: warm && inFlight === 0 ? 1 : 0,
        failed: all.length > 0 && all.every((s) => s.workers.failed > 0) ? 1 : 0,
      },
      inFlight,
      queued: 0,
      replaced: 0,
    };
  }
}

export class InlineStrategy implements ExecutionStrategy {
  readonly name: StrategyName;
  readonly #capacity: number;
  readonly #o: StrategyOptions;
  readonly #onStopped: () => void;
  #state: "new" | "starting" | "warm" | "failed" | "stopped" = "new";
  #inFlight = 0;

  constructor(name: StrategyName, capacity: number, options: StrategyOptions, onStopped: () => void = () => undefined) {
    this.name = name;
    this.#capacity = capacity;
    this.#o = options;
    this.#onStopped = onStopped;
  }

  get capacity(): number {
    return this.#capacity;
  }

  get concurrency(): number {
    return this.#capacity;
  }

  async start(): Promise<void> {
    this.#state = "starting";
    let last: unknown;
    for (let attempt = 1; attempt <= Math.max(1, this.#o.startRetries); attempt++) {
      try {
        await runHook(this.#o.env, this.#o.handler, "onStart", "main");
        this.#state = "warm";
        return;
      } catch (err) {
        last = err;
        this.#o.env.logger.warn({ err: (err as Error)?.message, attempt }, "onStart failed");
      }
    }
    this.#state = "failed";
    throw new AnyServeError(
      "CAPABILITY_FAILED",
      `onStart failed ${Math.max(1, this.#o.startRetries)} time(s): ${(last as Error)?.message ?? String(last)}`,
    );
  }

  submit(task: Task, signal: CancelSignal, hooks?: TaskHooks): Promise<EncodedBody> {
    return this.#track(() => runTask(this.#o.env, this.#o.handler, task, signal, hooks));
  }

  stream(task: Task, signal: CancelSignal, onChunk: (chunk: EncodedBody) => void, hooks?: TaskHooks): Promise<void> {
    return this.#track(() => runStreamTask(this.#o.env, this.#o.handler, task, signal, onChunk, hooks));
  }

  submitBatch(tasks: Task[], signals: CancelSignal[], hooks?: TaskHooks): Promise<BatchOutcome[]> {
    return this.#track(() => runBatchTask(this.#o.env, this.#o.handler, tasks, signals, hooks));
  }

  async stop(): Promise<void> {
    this.#onStopped();
    if (this.#state !== "warm") {
      this.#state = "stopped";
      return;
    }
    this.#state = "stopped";
    await runHook(this.#o.env, this.#o.handler, "onStop", "main").catch((err: unknown) =>
      this.#o.env.logger.warn({ err: (err as Error)?.message }, "onStop failed"),
    );
  }

  stats(): StrategyStats {
    const warm = this.#state === "warm" ? 1 : 0;
    return {
      strategy: this.name,
      workers: {
        starting: this.#state === "starting" ? 1 : 0,
        warm,
        idle: warm && this.#inFlight === 0 ? 1 : 0,
        failed: this.#state === "failed" ? 1 : 0,
      },
      inFlight: this.#inFlight,
      queued: 0,
      replaced: 0,
    };
  }

  /** Counts the job while it runs. One `.then`, not an async function: a promise and a microtask fewer per call. */
  #track<T>(run: () => Promise<T>): Promise<T> {
    if (this.#state !== "warm")
      return Promise.reject(new AnyServeError("SHUTTING_DOWN", `the ${this.name} strategy is ${this.#state}, not running`));
    this.#inFlight++;
    let running: Promise<T>;
    try {
      running = run();
    } catch (err) {
      running = Promise.reject(err);
    }
    return running.then(
      (value) => {
        this.#inFlight--;
        return value;
      },
      (err: unknown) => {
        this.#inFlight--;
        throw AnyServeError.from(err);
      },
    );
  }
}
