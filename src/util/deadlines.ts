/**
 * Deadlines: many on one Node timer ({@link Deadlines}, {@link Timed}), and a call run under one
 * ({@link runWithDeadline}, the replica's dispatcher's). The one module for deadlines.
 *
 * Many deadlines on one Node timer.
 *
 * Every call in flight has a deadline: the gateway's frame client fails a request the replica
 * does not answer in time, the replica's dispatcher stops a handler that runs past it. Nearly all of
 * them are cleared long before they fire. A `setTimeout` and `clearTimeout` per call cost ~250 ns
 * together (a Timeout object with its async id, a list per duration, a priority queue kept in
 * step), paid twice per request across the hop; here a deadline is four fields on the object that
 * owns it, linked into a list, and setting or clearing one is a few pointer writes.
 *
 * Deadlines with the same duration (in whole ms) are due in the order they were set, so each
 * duration has a first-in-first-out list (dropped when it empties); the one Node timer is armed
 * for the earliest head. A cleared deadline is unlinked at once; the timer is not moved for it (it
 * fires, finds nothing due, and is armed again), except that it is cancelled as soon as no
 * deadline is left, so an idle process is not kept alive by it. Times are monotonic
 * (`performance.now()`), as Node's own timers' are: a wall clock set back must not postpone them.
 *
 * @example
 * ```ts
 * class Call extends Timed {
 *   onTimeout(): void { console.log("too late"); }
 * }
 * const call = new Call();
 * deadlines.set(call, 5_000);
 * deadlines.clear(call); // answered in time
 * ```
 */

import { AnyServeError } from "../errors.js";
import { Cancellation, type CancelSignal } from "./cancel.js";

/** Longest settable delay: Node's own timer limit (2^31 − 1 ms). A longer one is no deadline. */
export const MAX_DEADLINE_MS = 2 ** 31 - 1;

/** Something with a deadline. Subclasses say what happens when it passes. */
export abstract class Timed {
  /** @internal */ _prev: Timed | null = null;
  /** @internal */ _next: Timed | null = null;
  /** @internal The list it is linked in, or null. */ _list: DeadlineList | null = null;
  /** @internal When it is due (performance.now() time). */ _due = 0;

  /** Called once, from the timer, when the deadline passes without being cleared. */
  abstract onTimeout(): void;
}

/** The deadlines of one duration, due in the order they were set. */
class DeadlineList {
  head: Timed | null = null;
  tail: Timed | null = null;
  constructor(readonly ms: number) {}

  push(t: Timed): void {
    t._list = this;
    t._prev = this.tail;
    t._next = null;
    if (this.tail === null) this.head = t;
    else this.tail._next = t;
    this.tail = t;
  }

  remove(t: Timed): void {
    if (t._prev === null) this.head = t._next;
    else t._prev._next = t._next;
    if (t._next === null) this.tail = t._prev;
    else t._next._prev = t._prev;
    t._prev = t._next = null;
    t._list = null;
  }
}

/** A set of deadlines sharing one Node timer. Use the process-wide {@link deadlines}. */
export class Deadlines {
  readonly #lists = new Map<number, DeadlineList>();
  #size = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now() time); Infinity when it is not armed. */
  #armedFor = Infinity;
  readonly #fire = (): void => this.#onTimer();

  /** Deadlines set and not yet cleared or fired. */
  get size(): number {
    return this.#size;
  }

  /**
   * Sets `t`'s deadline `ms` from now (rounded up to a whole ms), replacing one it had. A delay
   * that is not a number below {@link MAX_DEADLINE_MS} sets none (and clears the old one).
   */
  set(t: Timed, ms: number): void {
    this.clear(t);
    if (!(ms < MAX_DEADLINE_MS)) return;
    const key = ms > 0 ? Math.ceil(ms) : 0;
    let list = this.#lists.get(key);
    if (list === undefined) {
      list = new DeadlineList(key);
      this.#lists.set(key, list);
    }
    t._due = performance.now() + key;
    list.push(t);
    this.#size++;
    if (t._due < this.#armedFor) this.#arm(t._due);
  }

  /** Clears `t`'s deadline, if it has one. */
  clear(t: Timed): void {
    const list = t._list;
    if (list === null) return;
    list.remove(t);
    // An empty list goes: with many distinct durations, lists kept would pile up for the timer to walk.
    if (list.head === null) this.#lists.delete(list.ms);
    if (--this.#size === 0) this.#disarm();
  }

  #arm(due: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = due;
    this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(due - performance.now())));
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  /** Fires what is due, drops lists left empty, and arms the timer for the earliest deadline left. */
  #onTimer(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = performance.now();
    const due: Timed[] = [];
    let next = Infinity;
    for (const [key, list] of this.#lists) {
      let t = list.head;
      while (t !== null && t._due <= now) {
        const after: Timed | null = t._next;
        list.remove(t);
        this.#size--;
        due.push(t);
        t = after;
      }
      if (t === null) this.#lists.delete(key);
      else if (t._due < next) next = t._due;
    }
    if (next !== Infinity) this.#arm(next);
    // After the timer is armed again, since a callback may set or clear deadlines. One that throws
    // does not stop the others; the first error is thrown afterwards, as from any timer.
    let failed = false;
    let error: unknown;
    for (const t of due) {
      try {
        t.onTimeout();
      } catch (err) {
        if (!failed) error = err;
        failed = true;
      }
    }
    if (failed) throw error;
  }
}

/** The process's deadlines: the frame client's and the replica's dispatcher's. */
export const deadlines = new Deadlines();

/**
 * What the work under {@link runWithDeadline} may do to its deadline (the execution layer's task
 * hooks have this shape): lower it, once the request is decoded and its own `timeout` parameter
 * asks for less time. `index` is the task's position in a batch, 0 otherwise.
 */
export interface LowersDeadline {
  lowerDeadline(index: number, at: number): void;
}

/**
 * Runs work under a deadline and the caller's abort signal. Whichever comes first rejects the
 * call (504 DEADLINE_EXCEEDED or 499 CANCELLED) and fires the signal handed to the work, so a
 * handler that listens can stop, a queued request leaves its queue, and a worker that ignores the
 * signal can be terminated; the caller never waits past the deadline.
 *
 * The work may only lower the deadline (`hooks.lowerDeadline`), once the request is decoded and its own
 * `timeout` parameter asks for less time.
 */
export function runWithDeadline<T>(
  timeoutMs: number,
  callerSignal: CancelSignal | undefined,
  work: (signal: CancelSignal, deadline: number, hooks: LowersDeadline) => Promise<T>,
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
class DeadlineRun<T> extends Timed implements LowersDeadline {
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
