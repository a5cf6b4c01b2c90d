/**
 * The deployment file's `api_server` block: where the API server listens, how it routes
 * (unmatched capabilities, delegation depth, warm-up, stalls), the registry's bounds, TLS, and its
 * resilience settings — failover retries, outlier detection and the circuit breaker. schema.ts
 * composes it into the deployment file's schema.
 *
 * @example
 * ```ts
 * apiServerSchema.parse({ port: 9000 }).grpc_port; // 8081
 * ```
 */
import { z } from "zod";
import { optionalPath, positiveInt, seconds, writeTimeout } from "./primitives.js";

/** Failover retries (Finagle-style budget: retries ≤ ratio × requests + a floor per second). */
const failover = z.strictObject({
  max_retries: z.number().int().min(0).max(10).default(2),
  retry_budget_ratio: z.number().min(0).max(10).default(0.2),
  min_retries_per_second: z.number().min(0).max(100_000).default(10),
});

/** Envoy's outlier detection defaults. */
const outlierDetection = z.strictObject({
  consecutive_failures: positiveInt(1_000_000).default(5),
  base_ejection_time: seconds.default(30),
  max_ejection_time: seconds.default(300),
  max_ejection_percent: z.number().min(0).max(100).default(10),
});

/** Moleculer's circuit breaker defaults. */
const circuitBreaker = z.strictObject({
  failure_ratio: z.number().gt(0).max(1).default(0.5),
  min_requests: positiveInt(1_000_000).default(20),
  window: seconds.default(60),
  half_open_time: seconds.default(10),
});

export const apiServerSchema = z
  .strictObject({
    host: z.string().min(1).max(255).default("127.0.0.1"),
    port: z.number().int().min(0).max(65_535).default(8080),
    grpc_port: z.number().int().min(0).max(65_535).nullable().default(8081),
    unmatched: z.enum(["error", "delegate"]).default("error"),
    max_delegation_depth: z.number().int().min(0).max(16).default(1),
    request_timeout: seconds.default(60),
    /** Serve REST with the fast ingress (raw sockets + llhttp for the inference routes). */
    fast_ingress: z.boolean().default(false),
    /** Seconds a client may take none of its answer (a stream or a whole one) before it is cut. */
    write_timeout: writeTimeout.default(30),
    /** Request bodies held at once over all requests, MB (past it: 503 SERVER_OVERLOADED, the body not read). */
    max_buffered_mb: positiveInt(1_048_576).default(1024),
    /** Replicas the registry holds at most (a new id past it: 507 REGISTRY_FULL). */
    max_replicas: z.number().int().min(1).max(1_000_000).default(1024),
    /** New replica ids accepted per second, and in one burst (past it: 429 REGISTRATION_RATE_LIMITED). */
    registration_rate: z.number().min(0.1).max(100_000).default(100),
    /** Serve REST and gRPC over TLS: certificate chain and key (PEM files, relative to the deployment file). */
    tls_cert: optionalPath,
    tls_key: optionalPath,
    /** CA bundle trusted for replicas' certificates (and handed to `up`'s replicas for the API server's). */
    tls_ca: optionalPath,
    /**
     * Seconds after start during which a capability nothing matches is 503 `REGISTRY_WARMING_UP`
     * (retryable) rather than 404: replicas re-register after an API server restart. `up` ends it
     * early once its deployment is applied. 0: no warm-up.
     */
    warmup: z.number().min(0).max(3_600).default(15),
    /**
     * Seconds a replica may hold requests without any progress (an answer, a stream chunk, a passed
     * probe) before it is passed over while another can serve (a stopped or wedged process). 0: off.
     */
    stall_timeout: z.number().min(0).max(3_600).default(5),
    failover: failover.default(failover.parse({})),
    outlier_detection: outlierDetection.default(outlierDetection.parse({})),
    circuit_breaker: circuitBreaker.default(circuitBreaker.parse({})),
  })
  .refine((a) => (a.tls_cert === null) === (a.tls_key === null), {
    message: "tls_cert and tls_key go together: give both or neither",
    path: ["tls_key"],
  });
