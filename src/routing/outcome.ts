/**
 * How the gateway reads a failed attempt: does it count against the replica (outlier ejection,
 * circuit breaker), and may it be tried again on another replica (failover)? One place, so the
 * three mechanisms cannot disagree about what a failure is.
 */
import { ERROR_CATALOGUE, type AnyServeError, type ErrorCode } from "../errors.js";

/**
 * Failures that say something about the replica rather than the request: it could not be reached,
 * it was overloaded or shutting down, its workers failed or crashed. A handler's own error
 * (WORKER_ERROR), a deadline or a cancellation is about the request and does not eject.
 */
const REPLICA_FAULTS = new Set<ErrorCode>([
  "REPLICA_UNREACHABLE",
  "UPSTREAM_PROTOCOL_ERROR",
  "QUEUE_FULL",
  "SHUTTING_DOWN",
  "CAPABILITY_FAILED",
  "NO_READY_REPLICA",
  "WORKER_CRASHED",
  "WORKER_OUT_OF_MEMORY",
  "INTERNAL",
]);

/** Counts toward outlier ejection (consecutive replica faults). */
export function isReplicaFault(code: ErrorCode): boolean {
  return REPLICA_FAULTS.has(code);
}

/**
 * Load shedding is the replica working as intended (it answered at once and the client may retry),
 * so it never opens a circuit: a burst against a single replica must not turn into 10 s of
 * NO_READY_REPLICA.
 */
const SHEDDING = new Set<ErrorCode>(["QUEUE_FULL", "SHUTTING_DOWN", "NO_READY_REPLICA"]);

/**
 * Counts as a failure for a replica's per-capability circuit: a server-side error (5xx) that says
 * the capability is broken there — the handler threw or crashed, timed out, failed to start — not
 * load shedding.
 */
export function isCircuitFailure(code: ErrorCode): boolean {
  return ERROR_CATALOGUE[code].http >= 500 && !SHEDDING.has(code);
}

/**
 * May be retried on another replica: the catalogue marks the code retryable (not delivered,
 * overloaded, draining, failed to start) and nothing of the answer reached the client yet. A
 * connection lost after part of a reply arrived is never retried.
 */
export function canRetryElsewhere(err: AnyServeError, answerStarted: boolean): boolean {
  if (answerStarted || !err.retryable) return false;
  const data = err.data as { responseStarted?: unknown } | undefined;
  return data?.responseStarted !== true;
}
