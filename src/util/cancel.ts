/**
 * Cancellation on the hot path without an AbortController per request.
 *
 * Every call carries a way to say "the caller left" or "the deadline passed". Node's
 * AbortController/AbortSignal does that, but creating one costs a full EventTarget: profiles of the
 * gateway and the replica showed `createAbortSignal` and its listeners at 8 % and 15 % of their CPU
 * per request, for signals that almost never fire. {@link Cancellation} is the same contract —
 * `aborted`, `reason`, `addEventListener("abort")`, `removeEventListener` — as a plain object with
 * an array of listeners. Code that hands a signal to users or libraries (a handler's `ctx.signal`,
 * undici) asks for a real AbortSignal with {@link toAbortSignal}; that one is made on first use.
 *
 * A real AbortSignal is a {@link CancelSignal} too, so either can be passed wherever one is read.
 */

/** A listener: a function, or an object with `handleEvent` (saves a closure per request). */
export type CancelListener = (() => void) | { handleEvent(): void };

/** The part of AbortSignal the serving path reads; AbortSignal and {@link Cancellation} both have it. */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: CancelListener, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: CancelListener): void;
}

/**
 * A cancellable operation: {@link abort} fires its listeners once, in the order they were added.
 * Like AbortSignal, a listener added after the abort is never called (check `aborted` first).
 *
 * @example
 * ```ts
 * const cancel = new Cancellation();
 * cancel.addEventListener("abort", () => console.log("stopped:", cancel.reason));
 * cancel.abort(new Error("client went away"));
 * ```
 */
export class Cancellation implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: CancelListener[] | undefined;
  #controller: AbortController | undefined;

  addEventListener(_type: "abort", listener: CancelListener): void {
    if (this.aborted) return;
    if (this.#listeners === undefined) this.#listeners = [listener];
    else this.#listeners.push(listener);
  }

  removeEventListener(_type: "abort", listener: CancelListener): void {
    const list = this.#listeners;
    if (list === undefined) return;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  }

  /** Marks it aborted with `reason` and calls every listener once; later calls do nothing. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new DOMException("This operation was aborted", "AbortError");
    const list = this.#listeners;
    this.#listeners = undefined;
    if (list !== undefined) {
      for (const l of list) {
        // As EventTarget does: a listener that throws does not stop the others; its error is
        // reported as uncaught, not thrown at whoever called abort().
        try {
          if (typeof l === "function") l();
          else l.handleEvent();
        } catch (err) {
          process.nextTick(() => {
            throw err;
          });
        }
      }
    }
    this.#controller?.abort(this.reason);
  }

  /** A real AbortSignal that follows this one (made on first use, then the same one). */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }
}

/** A real AbortSignal for `signal`: itself when it is one, else one that follows it. */
export function toAbortSignal(signal: CancelSignal): AbortSignal {
  if (signal instanceof Cancellation) return signal.signal;
  if (signal instanceof AbortSignal) return signal;
  const follower = new Cancellation();
  if (signal.aborted) follower.abort(signal.reason);
  else signal.addEventListener("abort", () => follower.abort(signal.reason), { once: true });
  return follower.signal;
}

/** A signal that fires once every one of `signals` has fired (a batch is abandoned only when all its callers are gone). */
export function allAborted(signals: readonly CancelSignal[]): Cancellation {
  const all = new Cancellation();
  let left = signals.length;
  const one = (): void => {
    if (--left === 0) all.abort(signals[0]!.reason);
  };
  for (const s of signals) {
    if (s.aborted) one();
    else s.addEventListener("abort", one, { once: true });
  }
  return all;
}
