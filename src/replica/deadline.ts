/**
 * Runs work under a deadline and the caller's abort signal. Whichever comes first rejects the
 * call (504 DEADLINE_EXCEEDED or 499 CANCELLED) and fires the signal handed to the work, so a
 * handler that listens can stop, a queued request leaves its queue, and a worker that ignores the
 * signal can be terminated; the caller never waits past the deadline.
 *
 * The work may only lower the deadline (`lower`), once the request is decoded and its own
 * `timeout` parameter asks for less time.
 */
import { AnyServeError } from "../errors.js";

export function runWithDeadline<T>(
  timeoutMs: number,
  callerSignal: AbortSignal | undefined,
  work: (signal: AbortSignal, deadline: number, lower: (deadline: number) => void) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const started = Date.now();
  let deadline = started + timeoutMs;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
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
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(
        () => finish(new AnyServeError("DEADLINE_EXCEEDED", `request exceeded its deadline of ${Math.round(deadline - started)} ms`)),
        Math.max(0, deadline - Date.now()),
      );
    };
    const lower = (at: number): void => {
      if (settled || !(at < deadline)) return;
      deadline = at;
      arm();
    };
    arm();
    if (callerSignal?.aborted) return onCallerAbort();
    callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
    let running: Promise<T>;
    try {
      running = work(controller.signal, deadline, lower);
    } catch (err) {
      return finish(AnyServeError.from(err));
    }
    running.then(
      (value) => finish(undefined, value),
      (err: unknown) => finish(AnyServeError.from(err)),
    );
  });
}
