/**
 * One job of a worker group: a task (or a batch of tasks) on its way to a worker, with the
 * promise of its caller. It listens to its callers' abort signals, remembers which worker holds
 * it, and settles exactly once.
 */
import { AnyServeError } from "../errors.js";
import type { EncodedBody } from "../protocol/types.js";
import type { WorkerHandle } from "./handle.js";
import type { JobMode, Task, TaskHooks } from "./task.js";
import { movesOnSend } from "./thread-port.js";
import { Msg, runMessage } from "./worker-protocol.js";
import { allAborted, type CancelSignal } from "../util/cancel.js";

/** A worker as the group holds it. */
export interface Slot {
  handle: WorkerHandle;
  state: "starting" | "warm" | "stopping";
  /**
   * Its place among the `min` workers the group always keeps (0 … min−1), which a replacement
   * takes over: calls pinned to a worker (affinity) go to the worker in their place. Undefined for
   * the extra workers a pool grows.
   */
  home: number | undefined;
  /** Handlers started in it (OPENED), and being started (OPEN sent, no answer yet). */
  open: Set<number>;
  opening: Set<number>;
  /** Handlers being stopped in it (CLOSE sent): called with CLOSED, or when the worker ends. */
  closing: Map<number, () => void>;
  /** Jobs sent and not answered, oldest (= running) first; all of one handler. */
  jobs: Job[];
  idleSince: number;
  /** performance.now() of its last answer. */
  lastDone: number;
}

export interface JobInit {
  id: number;
  /** The handler (index in the app) that runs it. */
  h: number;
  /** Hash of its affinity key: the job runs only on the worker in place `pin % min`. */
  pin?: number | undefined;
  mode: JobMode;
  tasks: Task[];
  signals: CancelSignal[];
  hooks?: TaskHooks | undefined;
  onChunk?: ((chunk: EncodedBody) => void) | undefined;
  resolve: (value: unknown) => void;
  reject: (err: AnyServeError) => void;
  /** Called once when every caller of the job has gone (deadline, disconnect). */
  onAbort: (job: Job) => void;
}

export class Job {
  readonly id: number;
  readonly h: number;
  readonly pin: number | undefined;
  readonly mode: JobMode;
  readonly tasks: Task[];
  /** Fires when every caller has gone. */
  readonly signal: CancelSignal;
  readonly hooks: TaskHooks | undefined;
  readonly onChunk: ((chunk: EncodedBody) => void) | undefined;
  /** The body moves to the worker (transfer): once sent, it cannot be re-sent elsewhere. */
  readonly moves: boolean;
  slot: Slot | undefined;
  /** performance.now() when it was sent to a worker. */
  sentAt = 0;
  graceTimer: NodeJS.Timeout | undefined;
  #settled = false;
  readonly #init: JobInit;
  readonly #itemAborts: (() => void)[] | undefined;

  constructor(init: JobInit) {
    this.#init = init;
    this.id = init.id;
    this.h = init.h;
    this.pin = init.pin;
    this.mode = init.mode;
    this.tasks = init.tasks;
    this.hooks = init.hooks;
    this.onChunk = init.onChunk;
    this.moves = init.tasks.length === 1 && movesOnSend(init.tasks[0]!.body);
    const signals = init.signals;
    this.signal = signals.length === 1 ? signals[0]! : allAborted(signals);
    this.signal.addEventListener("abort", this, { once: true });
    // One caller of a batch leaving cancels only its item.
    this.#itemAborts =
      signals.length > 1
        ? signals.map((s, i) => {
            const fn = (): void => this.slot?.handle.send(Msg.CANCEL, this.id, { i });
            s.addEventListener("abort", fn, { once: true });
            return fn;
          })
        : undefined;
  }

  /** Every caller has gone (the job is its own abort listener: no closure per job). */
  handleEvent(): void {
    this.#init.onAbort(this);
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** Request id of the (first) task, for messages. */
  get rid(): string {
    return this.tasks[0]?.call.rid ?? "";
  }

  /** Sends the job to `slot`'s worker (and cancels batch items whose callers already left). */
  sendTo(slot: Slot): void {
    this.slot = slot;
    this.sentAt = performance.now();
    slot.jobs.push(this);
    const msg = runMessage(this.h, this.mode, this.tasks);
    slot.handle.send(Msg.RUN, this.id, msg.meta, msg.body);
    if (this.#init.signals.length > 1) {
      this.#init.signals.forEach((s, i) => {
        if (s.aborted) slot.handle.send(Msg.CANCEL, this.id, { i });
      });
    }
  }

  /** Settles the caller's promise (once); returns false if it was already settled. */
  settle(err: AnyServeError | undefined, value?: unknown): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.signal.removeEventListener("abort", this);
    const items = this.#itemAborts;
    if (items !== undefined) {
      items.forEach((fn, i) => {
        this.#init.signals[i]!.removeEventListener("abort", fn);
      });
    }
    clearTimeout(this.graceTimer);
    if (err) this.#init.reject(err);
    else this.#init.resolve(value);
    return true;
  }

  /** The error of an aborted job: the reason its callers gave. */
  abortError(): AnyServeError {
    return AnyServeError.from(this.signal.reason, "CANCELLED");
  }
}
