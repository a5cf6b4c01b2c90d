/**
 * A lane: everything between the dispatcher and one capability's strategy — admission (the
 * bounded queue), dynamic batching, and the capability's lifecycle (cold → starting → warm → cold,
 * or failed). The lane never gives its strategy more than `capacity` jobs; everything beyond waits
 * here, where an expired or cancelled request simply leaves the queue. Its strategy comes from the
 * replica's {@link Execution}: under the worker strategies, the workers are the replica's, shared
 * with the other capabilities, and starting or stopping the lane starts or stops the capability on
 * them (its `onStart`/`onStop`), not the workers themselves.
 *
 * Admission: a request is refused with 503 QUEUE_FULL at once when `capacity × batch_size` are
 * running and `queue_size` more are waiting — never an unbounded wait.
 *
 * Batching (`batch_size` > 1, non-streaming handlers): when the strategy has a free slot, the lane
 * sends up to `batch_size` waiting requests as one job, waiting at most `batch_wait_ms` after the
 * oldest arrived for the batch to fill. While every slot is busy, requests pile up and the next
 * free slot takes a full batch (Triton's dynamic batcher behaves the same way).
 */
import { AnyServeError } from "../errors.js";
import type { WorkerCounts } from "./base.js";
import { formatCapability } from "../protocol/capability.js";
import type { EncodedBody } from "../protocol/types.js";
import type { HandlerEntry } from "../sdk/app.js";
import type { Logger } from "../util/log.js";
import type { Execution, ExecutionStrategy, StrategyStats } from "./base.js";
import type { Task, TaskHooks } from "./task.js";
import type { CancelSignal } from "../util/cancel.js";

export type LaneState = "cold" | "starting" | "warm" | "stopping" | "failed";

/**
 * Where a lane records its timings: the replica's per-capability series (replica/metrics.ts
 * implements it). Seconds; `observeN` records one value `n` times (a batch's execution).
 */
export interface LaneObserver {
  readonly queueWait: { observe(seconds: number): void };
  readonly execution: { observeN(seconds: number, n: number): void };
  readonly batchSize: { observe(size: number): void };
}

/** What a lane has at this moment, read at scrape time and by the health probe. */
export interface LaneLoad {
  /** Requests running on a worker. */
  inFlight: number;
  /** Requests waiting in the lane's queue. */
  queued: number;
  workers: WorkerCounts;
}

/** Adds `l` into `into` (the replica's totals over its lanes). */
export function addLoad(into: LaneLoad, l: LaneLoad): void {
  into.inFlight += l.inFlight;
  into.queued += l.queued;
  into.workers.starting += l.workers.starting;
  into.workers.warm += l.workers.warm;
  into.workers.idle += l.workers.idle;
  into.workers.failed += l.workers.failed;
}

export interface LaneOptions<M extends LaneObserver = LaneObserver> {
  entry: HandlerEntry;
  /** What the replica's capabilities run on (`createExecution`); the lane takes its strategy from it. */
  execution: Execution;
  /** The handler's index in the app. */
  handler: number;
  queueSize: number;
  batchSize: number;
  batchWaitMs: number;
  /** Lazy lanes stop their workers after this long without requests (ms). */
  idleTimeoutMs: number;
  /** Treat the capability as lazy even if it was not declared so (`--lazy`). */
  lazy?: boolean | undefined;
  logger: Logger;
  /** Called on every state change (the replica re-registers: warm/cold/failed). */
  onState: () => void;
  /** Where queue wait, execution time and batch sizes go (absent: `--no-metrics`). */
  metrics?: M | undefined;
}

interface Item {
  task: Task;
  signal: CancelSignal;
  hooks: TaskHooks | undefined;
  onChunk: ((chunk: EncodedBody) => void) | undefined;
  /** When the lane accepted it (performance.now()): batch waits and queue-wait metrics. */
  at: number;
  gone: boolean;
  resolve: (value: never) => void;
  reject: (err: unknown) => void;
  off: () => void;
}

/** `M`: the metrics object the lane is given, handed back as it is by {@link Lane.metrics}. */
export class Lane<M extends LaneObserver = LaneObserver> {
  readonly #o: LaneOptions<M>;
  #state: LaneState;
  #reason = "";
  #strategy: ExecutionStrategy | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #queue: Item[] = [];
  #live = 0;
  #jobs = 0;
  #runningItems = 0;
  #batchTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(o: LaneOptions<M>) {
    this.#o = o;
    this.#state = "cold";
  }

  get state(): LaneState {
    return this.#state;
  }

  get entry(): HandlerEntry {
    return this.#o.entry;
  }

  get lazy(): boolean {
    return this.#o.lazy === true || this.#o.entry.options.lazy === true;
  }

  /** The state the registry knows: `warm`, `cold` (starting and stopping count as cold) or `failed`. */
  get registryState(): "warm" | "cold" | "failed" {
    return this.#state === "warm" || this.#state === "failed" ? this.#state : "cold";
  }

  get metrics(): M | undefined {
    return this.#o.metrics;
  }

  /** Queues one call (503 QUEUE_FULL at once when full) and resolves with its answer. */
  run(task: Task, signal: CancelSignal, hooks?: TaskHooks): Promise<EncodedBody> {
    return this.#admit(task, signal, hooks, undefined) as Promise<EncodedBody>;
  }

  /** Queues one streaming call; chunks stop once `signal` fires. */
  stream(task: Task, signal: CancelSignal, onChunk: (chunk: EncodedBody) => void, hooks?: TaskHooks): Promise<void> {
    return this.#admit(task, signal, hooks, (c) => {
      if (!signal.aborted) onChunk(c);
    }) as Promise<void>;
  }

  /** Starts the workers (idempotent); a failed lane is given a fresh set of attempts. */
  start(): Promise<void> {
    if (this.#state === "warm") return Promise.resolve();
    if (this.#starting) return this.#starting;
    if (this.#stopping) return this.#stopping.then(() => this.start());
    clearTimeout(this.#idleTimer);
    this.#set("starting");
    const strategy = this.#o.execution.strategy(this.#o.handler, (reason) => {
      if (this.#strategy === strategy) this.#failed(reason);
    });
    this.#strategy = strategy;
    this.#starting = strategy.start().then(
      () => {
        this.#starting = undefined;
        if (this.#strategy !== strategy) return;
        this.#set("warm");
        this.#pump();
      },
      (err: unknown) => {
        this.#starting = undefined;
        if (this.#strategy === strategy) this.#failed((err as Error)?.message ?? String(err));
        throw AnyServeError.from(err, "CAPABILITY_FAILED");
      },
    );
    return this.#starting;
  }

  /** Stops the workers (`onStop` runs in each) once running jobs finish; the lane turns cold. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    const strategy = this.#strategy;
    if (!strategy || this.#state === "cold") return Promise.resolve();
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#batchTimer);
    this.#batchTimer = undefined;
    this.#set("stopping");
    this.#stopping = (async () => {
      await this.#starting?.catch(() => undefined);
      await strategy.stop();
      if (this.#strategy === strategy) this.#strategy = undefined;
      this.#stopping = undefined;
      this.#set("cold");
      // Requests that arrived while stopping start the workers again.
      if (this.#live > 0) void this.start().catch(() => undefined);
    })();
    return this.#stopping;
  }

  stats(): Record<string, unknown> {
    const s: StrategyStats | undefined = this.#strategy?.stats();
    return {
      capability: { ...this.#o.entry.capability },
      state: this.#state,
      ...(this.#state === "failed" ? { reason: this.#reason } : {}),
      lazy: this.lazy,
      strategy: this.#o.execution.name,
      workers: s?.workers ?? this.#noWorkers(),
      queue_size: this.#o.queueSize,
      queued: this.#live,
      in_flight: this.#runningItems,
      replaced: s?.replaced ?? 0,
    };
  }

  /** Requests running and waiting, and workers by state: for metrics and the health probe. */
  load(): LaneLoad {
    return { inFlight: this.#runningItems, queued: this.#live, workers: this.#strategy?.stats().workers ?? this.#noWorkers() };
  }

  #noWorkers(): LaneLoad["workers"] {
    return { starting: 0, warm: 0, idle: 0, failed: this.#state === "failed" ? 1 : 0 };
  }

  #admit(task: Task, signal: CancelSignal, hooks: TaskHooks | undefined, onChunk: Item["onChunk"]): Promise<unknown> {
    if (this.#state === "failed") return Promise.reject(this.#failedError());
    const cap = this.#o.entry.capability;
    const limit = this.#capacity() * this.#batchSize() + this.#o.queueSize;
    if (this.#live + this.#runningItems >= limit) {
      return Promise.reject(
        new AnyServeError(
          "QUEUE_FULL",
          `the queue of ${formatCapability(cap)} is full (${this.#runningItems} running, ${this.#live} waiting, queue_size ${this.#o.queueSize})`,
        ),
      );
    }
    clearTimeout(this.#idleTimer);
    const strategy = this.#strategy;
    if (
      onChunk === undefined &&
      this.#live === 0 &&
      this.#state === "warm" &&
      strategy !== undefined &&
      this.#jobs < strategy.capacity &&
      this.#o.entry.options.batch !== true
    ) {
      return this.#runNow(strategy, task, signal, hooks);
    }
    return new Promise((resolve, reject) => {
      const item: Item = { task, signal, hooks, onChunk, at: performance.now(), gone: false, resolve, reject, off: () => undefined };
      const onAbort = (): void => this.#leave(item, AnyServeError.from(signal.reason, "CANCELLED"));
      signal.addEventListener("abort", onAbort, { once: true });
      item.off = () => signal.removeEventListener("abort", onAbort);
      this.#queue.push(item);
      this.#live++;
      if (this.#state === "cold") void this.start().catch(() => undefined);
      else this.#pump();
    });
  }

  /**
   * The common case: nothing waits and a slot is free, so the call goes to the strategy at once,
   * without a queue item or an abort listener of its own (once running, the strategy and the
   * dispatcher's deadline handle the abort, as for a call that waited).
   */
  #runNow(strategy: ExecutionStrategy, task: Task, signal: CancelSignal, hooks: TaskHooks | undefined): Promise<EncodedBody> {
    if (signal.aborted) return Promise.reject(AnyServeError.from(signal.reason, "CANCELLED"));
    this.#jobs++;
    this.#runningItems++;
    const m = this.#o.metrics;
    const started = m ? performance.now() : 0;
    m?.queueWait.observe(0);
    // `.then(ok, fail)` rather than `.finally`, which costs two promises more per call.
    const done = (): void => {
      if (m) m.execution.observeN((performance.now() - started) / 1000, 1);
      this.#jobs--;
      this.#runningItems--;
      this.#pump();
    };
    return strategy.submit(task, signal, hooks).then(
      (out) => {
        done();
        return out;
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
  }

  #leave(item: Item, err: AnyServeError): void {
    if (item.gone) return;
    item.gone = true;
    item.off();
    this.#live--;
    item.reject(err);
    // Requests that left stay in the array until they reach its head; while every worker is busy
    // nothing pops it, so drop them here once they outnumber the waiting ones.
    if (this.#queue.length > 2 * this.#live + 64) this.#queue = this.#queue.filter((i) => !i.gone);
  }

  /** Jobs that may be out at once: before the first start, assume the configured size. */
  #capacity(): number {
    const s = this.#strategy;
    if (!s) return 1;
    return this.#batchSize() > 1 ? s.concurrency : s.capacity;
  }

  #batchSize(): number {
    return this.#o.entry.options.batch === true && this.#o.batchSize > 1 ? this.#o.batchSize : 1;
  }

  #pump(): void {
    const strategy = this.#strategy;
    if (this.#state !== "warm" || !strategy) return;
    const size = this.#batchSize();
    // Batches are not pipelined: a batch that waits for a free worker keeps filling instead.
    const slots = size > 1 ? strategy.concurrency : strategy.capacity;
    while (this.#live > 0 && this.#jobs < slots) {
      if (size > 1 && this.#live < size) {
        const wait = this.#oldest()!.at + this.#o.batchWaitMs - performance.now();
        if (wait > 0) {
          this.#batchTimer ??= setTimeout(() => {
            this.#batchTimer = undefined;
            this.#pump();
          }, wait);
          return;
        }
      }
      const items = this.#take(size);
      if (items.length === 0) break;
      this.#send(strategy, items);
    }
    this.#maybeIdle();
  }

  #oldest(): Item | undefined {
    while (this.#queue.length > 0 && this.#queue[0]!.gone) this.#queue.shift();
    return this.#queue[0];
  }

  #take(n: number): Item[] {
    const out: Item[] = [];
    while (out.length < n && this.#queue.length > 0) {
      const item = this.#queue.shift()!;
      if (item.gone) continue;
      item.gone = true;
      item.off();
      this.#live--;
      out.push(item);
    }
    return out;
  }

  #send(strategy: ExecutionStrategy, items: Item[]): void {
    this.#jobs++;
    this.#runningItems += items.length;
    // Metrics: queue wait ends here, execution runs until the strategy answers (the whole batch).
    const m = this.#o.metrics;
    const started = m ? performance.now() : 0;
    if (m) for (const it of items) m.queueWait.observe((started - it.at) / 1000);
    let done: Promise<void>;
    if (this.#o.entry.options.batch !== true) {
      const it = items[0]!;
      done = (it.onChunk ? strategy.stream(it.task, it.signal, it.onChunk, it.hooks) : strategy.submit(it.task, it.signal, it.hooks)).then(
        (v) => it.resolve(v as never),
        (err: unknown) => it.reject(err),
      );
    } else {
      m?.batchSize.observe(items.length);
      const hooks: TaskHooks = { lowerDeadline: (i, dl) => items[i]?.hooks?.lowerDeadline?.(0, dl) };
      done = strategy
        .submitBatch(
          items.map((i) => i.task),
          items.map((i) => i.signal),
          hooks,
        )
        .then(
          (outs) => {
            for (const [i, o] of outs.entries()) {
              const it = items[i]!;
              if (!o.ok) {
                it.reject(AnyServeError.fromWire(o.error));
              } else if (it.onChunk) {
                // A batch handler called on a streaming route answers with one chunk.
                it.onChunk(o.value);
                it.resolve(undefined as never);
              } else {
                it.resolve(o.value as never);
              }
            }
          },
          (err: unknown) => {
            for (const i of items) i.reject(err);
          },
        );
    }
    void done.finally(() => {
      if (m) m.execution.observeN((performance.now() - started) / 1000, items.length);
      this.#jobs--;
      this.#runningItems -= items.length;
      this.#pump();
    });
  }

  /** A lazy lane with nothing to do stops after `idle_timeout`. */
  #maybeIdle(): void {
    if (!this.lazy || this.#state !== "warm" || this.#live > 0 || this.#jobs > 0) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#state === "warm" && this.#live === 0 && this.#jobs === 0) {
        this.#o.logger.info({ capability: this.#o.entry.capability, idleMs: this.#o.idleTimeoutMs }, "idle: stopping workers");
        void this.stop();
      }
    }, this.#o.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #failed(reason: string): void {
    this.#reason = reason;
    this.#o.logger.error({ capability: this.#o.entry.capability, reason }, "capability failed");
    this.#set("failed");
    const err = this.#failedError();
    for (const item of this.#queue.splice(0)) this.#leave(item, err);
    const strategy = this.#strategy;
    this.#strategy = undefined;
    void strategy?.stop().catch(() => undefined);
  }

  #failedError(): AnyServeError {
    return new AnyServeError("CAPABILITY_FAILED", `${formatCapability(this.#o.entry.capability)} cannot start: ${this.#reason}`);
  }

  #set(state: LaneState): void {
    if (this.#state === state) return;
    const before = this.registryState;
    this.#state = state;
    if (this.registryState !== before) this.#o.onState();
  }
}
