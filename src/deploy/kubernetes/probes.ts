/**
 * How Kubernetes checks and stops anyserve's pods: readiness and liveness probes on the OIP health
 * routes, and for a replica the `monitoring` section mapped onto them (`health_check_interval` →
 * the probe period, `unhealthy_restart_after` → the liveness failure threshold) plus the stop
 * sequence (a preStop pause of one heartbeat interval, then the replica's own drain on SIGTERM).
 *
 * @example
 * ```ts
 * const container = { name: "replica", ...replicaProbes(cfg), ... };
 * const podSpec = { containers: [container], terminationGracePeriodSeconds: terminationGraceSeconds(cfg) };
 * ```
 */
import type { ServiceConfig } from "../../config/schema.js";

/** Seconds a replica may take to drain on SIGTERM before it stops waiting (replica.ts's default drain). */
const DRAIN_SECONDS = 30;

const httpGet = (route: "ready" | "live") => ({ path: `/v2/health/${route}`, port: "http" });

/** The API server container's probes (its REST port is named `http`). */
export function apiServerProbes() {
  return {
    readinessProbe: { httpGet: httpGet("ready"), periodSeconds: 5 },
    livenessProbe: { httpGet: httpGet("live"), periodSeconds: 10 },
  };
}

/** A replica container's probes and preStop hook, from its service's `monitoring` section. */
export function replicaProbes(cfg: ServiceConfig) {
  const interval = cfg.monitoring.health_check_interval;
  const probePeriod = Math.max(1, Math.round(interval));
  return {
    readinessProbe: { httpGet: httpGet("ready"), periodSeconds: probePeriod },
    livenessProbe: {
      httpGet: httpGet("live"),
      periodSeconds: probePeriod,
      // unhealthy_restart_after: how long a replica may stay unhealthy before it is replaced.
      failureThreshold: Math.max(1, Math.ceil((cfg.monitoring.unhealthy_restart_after ?? 3 * probePeriod) / probePeriod)),
    },
    // The drain is the replica's own on SIGTERM (unregisters, waits for the API servers' frame
    // connections to close, finishes what it has); the hook only pauses a heartbeat interval first.
    lifecycle: { preStop: { exec: { command: ["sleep", String(Math.max(1, Math.ceil(interval)))] } } },
  };
}

/** Longer than the preStop wait plus the drain (which waits for requests up to their timeout). */
export function terminationGraceSeconds(cfg: ServiceConfig): number {
  return Math.ceil(cfg.monitoring.health_check_interval) + Math.max(DRAIN_SECONDS, Math.ceil(cfg.performance.timeout)) + 10;
}
