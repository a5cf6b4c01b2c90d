/**
 * Runs work under a deadline and the caller's abort signal. Whichever comes first rejects the
 * call (504 DEADLINE_EXCEEDED or 499 CANCELLED) and fires the signal handed to the work, so a
 * handler that listens can stop; the caller never waits past the deadline.
 */
import { AnyServeError } from "../errors.js";

export function runWithDeadline<T>(
  timeoutMs: number,
  callerSignal: AbortSignal | undefined,
  work: (signal: AbortSignal, deadline: number) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const deadline = Date.now() + timeoutMs;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (err: AnyServeError | undefined, value?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      callerSignal?.removeEventListener("abort", onCallerAbort);
      if (err) {
        controller.abort(err);
        reject(err);
      } else {
        resolve(value as T);
      }
    };
    const onCallerAbort = (): void => finish(new AnyServeError("CANCELLED", "the caller cancelled the request"));
    const timer = setTimeout(
      () => finish(new AnyServeError("DEADLINE_EXCEEDED", `request exceeded its deadline of ${Math.round(timeoutMs)} ms`)),
      Math.max(0, timeoutMs),
    );
    if (callerSignal?.aborted) return onCallerAbort();
    callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
    let running: Promise<T>;
    try {
      running = work(controller.signal, deadline);
    } catch (err) {
      return finish(AnyServeError.from(err));
    }
    running.then(
      (value) => finish(undefined, value),
      (err: unknown) => finish(AnyServeError.from(err)),
    );
  });
}
