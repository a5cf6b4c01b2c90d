/**
 * Runs work under a deadline and the caller's abort signal. Whichever comes first rejects the
 * call (504 DEADLINE_EXCEEDED or 499 CANCELLED) and fires the signal handed to the work, so a
 * handler that listens can stop, a queued request leaves its queue, and a worker that ignores the
 * signal can be terminated; the caller never waits past the deadline.
 *
 * The work may only lower the deadline (`hooks.lowerDeadline`), once the request is decoded and its own
 * `timeout` parameter asks for less time.
 */
import { AnyServeError } from "../errors.js";
import type { TaskHooks } from "../execution/task.js";
import { Cancellation, type CancelSignal } from "../util/cancel.js";
import { deadlines, Timed } from "../util/deadlines.js";

export function runWithDeadline<T>(
  timeoutMs: number,
  callerSignal: CancelSignal | undefined,
  work: (signal: CancelSignal, deadline: number, hooks: TaskHooks) => Promise<T>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const run = new DeadlineRun<T>(timeoutMs, callerSignal, resolve, reject);
    if (callerSignal?.aborted) return run.handleEvent();
    callerSignal?.addEventListener("abort", run, { once: true });
    let running: Promise<T>;
    try {
      running = work(run.cancel, run.deadline, run);
    } catch (err) {
      return run.finish(AnyServeError.from(err));
    }
    running.then(run.succeed, run.fail);
  });
}

/**
 * One call under a deadline. A class rather than closures: it runs once per request, and being
 * its own abort listener (`handleEvent`), task hooks (`lowerDeadline`) and deadline (`Timed`, on
 * the process's shared timer) saves several allocations per call.
 */
class DeadlineRun<T> extends Timed implements TaskHooks {
  readonly cancel = new Cancellation();
  readonly #started = Date.now();
  deadline: number;
  #settled = false;

  constructor(
    timeoutMs: number,
    private readonly callerSignal: CancelSignal | undefined,
    private readonly resolve: (value: T) => void,
    private readonly reject: (err: AnyServeError) => void,
  ) {
    super();
    this.deadline = this.#started + timeoutMs;
    this.#arm();
  }

  /** The caller left. */
  handleEvent(): void {
    this.finish(new AnyServeError("CANCELLED", "the caller cancelled the request"));
  }

  readonly succeed = (value: T): void => this.finish(undefined, value);
  readonly fail = (err: unknown): void => this.finish(AnyServeError.from(err));

  /** The work may only lower the deadline (the request's own `timeout` parameter). */
  lowerDeadline(_index: number, at: number): void {
    if (this.#settled || !(at < this.deadline)) return;
    this.deadline = at;
    this.#arm();
  }

  finish(err: AnyServeError | undefined, value?: T): void {
    if (this.#settled) return;
    this.#settled = true;
    deadlines.clear(this);
    this.callerSignal?.removeEventListener("abort", this);
    if (err) {
      this.cancel.abort(err);
      this.reject(err);
    } else {
      this.resolve(value as T);
    }
  }

  #arm(): void {
    deadlines.set(this, Math.max(0, this.deadline - Date.now()));
  }

  /** @internal The deadline passed. */
  onTimeout(): void {
    this.finish(new AnyServeError("DEADLINE_EXCEEDED", `request exceeded its deadline of ${Math.round(this.deadline - this.#started)} ms`));
  }
}
