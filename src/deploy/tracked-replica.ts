/**
 * A replica the deployment controller (controller.ts) started, and what it has seen of it: its
 * handle's last phase, its recent crashes, whether it was given up on, since when it has not been
 * serving. Read two ways: as `reconcile` sees it ({@link observe}: with the registry's health) and
 * as the status API shows it ({@link statusOf}).
 */
import type { ObservedReplica, ReplicaHealth } from "./reconcile.js";
import type { ReplicaHandle, ReplicaPhase, ReplicaState, ReplicaStatus } from "./replica-handle.js";
import { type HealthSource, ongoingAt } from "./registry-readings.js";

/** A replica and what the controller has seen of it. */
export interface Tracked {
  handle: ReplicaHandle;
  phase: ReplicaPhase;
  crashes: number[];
  crashLooping: boolean;
  notServingSince: number | null;
}

/**
 * The replica as `reconcile` sees it, with the registry's health as data. Notes when a running
 * replica stopped serving (unhealthy or unregistered), for `unhealthy_restart_after`.
 */
export function observe(t: Tracked, registry: HealthSource, now: number): ObservedReplica {
  const spec = t.handle.spec;
  const entry = registry.get(spec.replicaId);
  let health: ReplicaHealth = "serving";
  let healthDetail: string | undefined;
  if (entry === undefined) {
    health = "unregistered";
    healthDetail = "not registered (no heartbeat)";
  } else if (!entry.healthy) {
    health = "unhealthy";
    healthDetail = `${entry.probeFailures} failed health checks${entry.probeError ? `: ${entry.probeError}` : ""}`;
  } else if (!entry.available) {
    health = "draining";
  }
  const troubled = t.phase === "running" && (health === "unhealthy" || health === "unregistered");
  t.notServingSince = troubled ? (t.notServingSince ?? now) : null;
  return {
    id: spec.replicaId,
    service: spec.service,
    slot: spec.slot,
    version: spec.version,
    phase: t.phase,
    crashLooping: t.crashLooping,
    health,
    healthDetail,
    notServingSince: t.notServingSince,
    crashes: t.crashes,
    ongoing: ongoingAt(registry, spec.replicaId),
  };
}

/** The replica as the controller's `status()` shows it. */
export function statusOf(t: Tracked): ReplicaStatus {
  const spec = t.handle.spec;
  const info = t.handle.info();
  const state: ReplicaState = t.crashLooping
    ? "crash_looping"
    : t.phase === "exited" || (t.phase === "starting" && info.restarts > 0)
      ? "restarting"
      : t.phase === "created"
        ? "starting"
        : t.phase;
  return { replicaId: spec.replicaId, service: spec.service, slot: spec.slot, version: spec.version, state, ...info };
}
