/**
 * The workers of one replica, shared by its capabilities (`multi`, `pool`, `process`): one
 * WorkerGroup runs every handler of the app, each worker with one copy of the app (so a class
 * service has one instance per worker, used by all its methods). Each capability keeps its own
 * lane — queue, queue limit, batching, lazy start and idle stop, metrics — and runs through a
 * {@link HandlerView} of the group: starting the lane starts the handler in every worker
 * (`onStart`), stopping it runs `onStop` there. The workers start with the first capability that
 * starts and stop when the last one stops (a replica whose capabilities are all lazy and idle has
 * no workers).
 */
import { AnyServeError } from "../errors.js";
import type { EncodedBody } from "../protocol/types.js";
import { type PinOf, pinner } from "./affinity.js";
import type { Execution, ExecutionOptions, ExecutionStrategy, StrategyName, StrategyStats } from "./base.js";
import type { BatchOutcome, Task, TaskHooks } from "./task.js";
import type { WorkerGroup } from "./worker-group.js";
import type { CancelSignal } from "../util/cancel.js";

export class SharedWorkers implements Execution {
  readonly name: StrategyName;
  readonly #o: ExecutionOptions;
  readonly #make: () => WorkerGroup;
  #group: WorkerGroup | undefined;
  /** The previous group's stop: a new group starts after it, never beside it. */
  #stopping: Promise<void> = Promise.resolve();

  constructor(name: StrategyName, o: ExecutionOptions, make: () => WorkerGroup) {
    this.name = name;
    this.#o = o;
    this.#make = make;
  }

  strategy(handler: number, onFailed?: (reason: string) => void): ExecutionStrategy {
    const entry = this.#o.env.app.handlers[handler];
    return new HandlerView(this, handler, onFailed, entry ? pinner(entry) : undefined);
  }

  stats(): StrategyStats {
    return (
      this.#group?.stats() ?? {
        strategy: this.name,
        workers: { starting: 0, warm: 0, idle: 0, failed: 0 },
        inFlight: 0,
        queued: 0,
        replaced: 0,
      }
    );
  }

  /** Starts `handler` on the workers (and the workers, if none run); resolves with the group it runs on. */
  async open(handler: number, onFailed: (reason: string) => void): Promise<WorkerGroup> {
    await this.#stopping;
    if (this.#group?.state === "failed" || this.#group?.state === "stopped") this.#group = undefined;
    const group = (this.#group ??= this.#make());
    try {
      await group.open(handler, onFailed);
    } catch (err) {
      await this.#release(group);
      throw err;
    }
    return group;
  }

  /** Stops `handler` on `group`; the workers stop when it was the last handler started there. */
  async close(group: WorkerGroup, handler: number): Promise<void> {
    await group.close(handler);
    await this.#release(group);
  }

  #release(group: WorkerGroup): Promise<void> {
    if (group.handlerCount > 0 || this.#group !== group) return this.#stopping;
    this.#group = undefined;
    this.#stopping = group.stop();
    return this.#stopping;
  }
}

/** One capability's strategy: its handler on the shared workers. */
class HandlerView implements ExecutionStrategy {
  readonly name: StrategyName;
  readonly #workers: SharedWorkers;
  readonly #h: number;
  readonly #onFailed: (reason: string) => void;
  readonly #pin: PinOf | undefined;
  #group: WorkerGroup | undefined;
  #starting: Promise<void> | undefined;
  #stopped = false;

  constructor(workers: SharedWorkers, h: number, onFailed: ((reason: string) => void) | undefined, pin: PinOf | undefined) {
    this.name = workers.name;
    this.#workers = workers;
    this.#h = h;
    this.#onFailed = onFailed ?? (() => undefined);
    this.#pin = pin;
  }

  get capacity(): number {
    return this.#group?.capacity(this.#h) ?? 1;
  }

  get concurrency(): number {
    return this.#group?.maxWorkers ?? 1;
  }

  start(): Promise<void> {
    if (this.#stopped) return Promise.reject(new AnyServeError("SHUTTING_DOWN", `the ${this.name} strategy is stopped`));
    this.#starting ??= this.#workers.open(this.#h, this.#onFailed).then((group) => {
      this.#group = group;
    });
    return this.#starting;
  }

  submit(task: Task, signal: CancelSignal, hooks?: TaskHooks): Promise<EncodedBody> {
    return this.#run("infer", [task], [signal], hooks) as Promise<EncodedBody>;
  }

  async stream(task: Task, signal: CancelSignal, onChunk: (chunk: EncodedBody) => void, hooks?: TaskHooks): Promise<void> {
    await this.#run("stream", [task], [signal], hooks, onChunk);
  }

  submitBatch(tasks: Task[], signals: CancelSignal[], hooks?: TaskHooks): Promise<BatchOutcome[]> {
    return this.#run("batch", tasks, signals, hooks) as Promise<BatchOutcome[]>;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#starting?.catch(() => undefined);
    const group = this.#group;
    this.#group = undefined;
    if (group) await this.#workers.close(group, this.#h);
  }

  stats(): StrategyStats {
    return (
      this.#group?.stats(this.#h) ?? {
        strategy: this.name,
        workers: { starting: 0, warm: 0, idle: 0, failed: 0 },
        inFlight: 0,
        queued: 0,
        replaced: 0,
      }
    );
  }

  #run(
    mode: "infer" | "stream" | "batch",
    tasks: Task[],
    signals: CancelSignal[],
    hooks?: TaskHooks,
    onChunk?: (c: EncodedBody) => void,
  ): Promise<unknown> {
    const group = this.#group;
    if (!group || this.#stopped)
      return Promise.reject(
        new AnyServeError("SHUTTING_DOWN", `the ${this.name} strategy is ${this.#stopped ? "stopped" : "not started"}`),
      );
    // A batch is never pinned (app.ts refuses affinity on batch handlers).
    const pin = mode !== "batch" && this.#pin !== undefined ? this.#pin(tasks[0]!) : undefined;
    return group.run(this.#h, pin, mode, tasks, signals, hooks, onChunk);
  }
}
