/**
 * The SDK client's retries, within the call's deadline, after a jittered back-off (50 ms doubling
 * to 1 s):
 * - answers the catalogue marks retryable that are raised before a handler runs: 503 QUEUE_FULL,
 *   NO_READY_REPLICA, REGISTRY_WARMING_UP (an API server just restarted), SHUTTING_DOWN,
 *   CAPABILITY_FAILED, OBJECT_OWNER_UNREACHABLE;
 * - the connection to the server this client calls failing before any byte of the answer: refused
 *   while it restarts, or closed as it shut down (`connectionLost`);
 * - a direct call the frame client never sent (`sent: false`).
 * Not a 502 REPLICA_UNREACHABLE the gateway answered, nor a replica connection lost mid-request on
 * the direct path: the replica may have run the call (that is failover's to retry, per service).
 * Nothing is tried again once part of the answer arrived (a stream's first chunk).
 *
 * A server that crashed mid-request also closes the connection before any byte: like the
 * gateway's failover, retrying assumes handlers are safe to run twice. `retry: false` on the client
 * turns it off.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { AnyServeError } from "../errors.js";

const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1_000;

/** One call's retry state: its deadline and the next back-off. */
export class Retries {
  readonly #end: number;
  readonly #signal: AbortSignal | undefined;
  #backoff = FIRST_BACKOFF_MS;

  constructor(timeoutMs: number, signal?: AbortSignal) {
    this.#end = Date.now() + timeoutMs;
    this.#signal = signal;
  }

  /** What is left of the call's time, for the next attempt (ms, at least 1). */
  remaining(): number {
    return Math.max(1, this.#end - Date.now());
  }

  /**
   * Waits out the back-off and resolves true when `err` may be tried again before the deadline;
   * false at once when it may not (not retryable, part of the answer arrived, cancelled, no time).
   */
  async again(err: unknown): Promise<boolean> {
    if (!isRetryable(err) || this.#signal?.aborted) return false;
    const wait = this.#backoff * (0.5 + Math.random() / 2);
    if (Date.now() + wait >= this.#end) return false;
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
    try {
      await sleep(wait, undefined, this.#signal ? { signal: this.#signal } : {});
    } catch {
      return false; // cancelled while waiting
    }
    return true;
  }
}

/** May be tried again (see above): retryable, nothing of the answer arrived, and not possibly run by a replica. */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof AnyServeError) || !err.retryable) return false;
  const data = err.data as { responseStarted?: unknown; sent?: unknown; connectionLost?: unknown } | undefined;
  if (data?.responseStarted === true) return false;
  if (err.code !== "REPLICA_UNREACHABLE") return true;
  return data?.sent === false || data?.connectionLost === true;
}
