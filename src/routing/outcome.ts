/**
 * How the gateway reads a failed attempt: does it count against the replica (outlier ejection,
 * circuit breaker), and may it be tried again on another replica (failover)? One place, so the
 * three mechanisms cannot disagree about what a failure is.
 */
import type { AnyServeError, ErrorCode } from "../errors.js";

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
 * A replica's per-capability circuit counts server-side errors that say the capability is broken
 * there: the handler threw or crashed, ran out of memory, timed out, failed to start, or the
 * replica could not be reached or answered garbage. Not load shedding (QUEUE_FULL, SHUTTING_DOWN,
 * NO_READY_REPLICA: the replica working as intended — a burst must not turn into 10 s of
 * NO_READY_REPLICA), and not resource answers (507 OBJECT_STORE_FULL, 413s: the replica answered
 * correctly that a limit was reached — an open circuit would hide that answer, and outlast the
 * limit, for its whole half-open time), nor what another hop failed (OBJECT_OWNER_UNREACHABLE,
 * DELEGATION_EXHAUSTED). A list, not "every 5xx": a new code is counted only once someone decides
 * it says the replica is broken (test/gateway/resilience.test.ts checks every 5xx is decided).
 */
const CIRCUIT_FAILURES = new Set<ErrorCode>([
  "WORKER_ERROR",
  "WORKER_CRASHED",
  "WORKER_OUT_OF_MEMORY",
  "DEADLINE_EXCEEDED",
  "CAPABILITY_FAILED",
  "REPLICA_UNREACHABLE",
  "UPSTREAM_PROTOCOL_ERROR",
  "INTERNAL",
]);

/** 5xx answers that are not the replica failing (see {@link CIRCUIT_FAILURES}): shedding, resource limits, another hop. */
export const NOT_REPLICA_FAILURES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "QUEUE_FULL",
  "SHUTTING_DOWN",
  "NO_READY_REPLICA",
  "REGISTRY_WARMING_UP",
  "OBJECT_STORE_FULL",
  // The API server's own answer to a registration past max_replicas: never a replica's.
  "REGISTRY_FULL",
  // The API server shedding request bodies past max_buffered_mb: never a replica's.
  "SERVER_OVERLOADED",
  "OBJECT_OWNER_UNREACHABLE",
  "DELEGATION_EXHAUSTED",
  // The management API's answers about the deployment's controller (scale, apply): never a replica's.
  "NO_CONTROLLER",
  "CONTROLLER_UNAVAILABLE",
]);

/** Counts as a failure for a replica's per-capability circuit breaker. */
export function isCircuitFailure(code: ErrorCode): boolean {
  return CIRCUIT_FAILURES.has(code);
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
