/**
 * Active health checks: the API server probes every registered replica's readiness over its
 * framed connection (the same path requests take, so a wedged connection or a blocked event loop
 * shows) every `health_check_interval`. A replica failing {@link UNHEALTHY_AFTER} probes in a row
 * is marked unhealthy and gets no traffic until one probe passes (Kubernetes' and Ray Serve's
 * threshold of 3). Heartbeats are separate: a replica that stops heartbeating is removed by the
 * registry's expiry, a replica that heartbeats but cannot serve is caught here. Each answer carries
 * the replica's load (requests running and queued, workers, CPU, memory), stored on its entry; an
 * autoscaled service's replicas are also asked between health probes, every `metrics_interval_s`
 * (load probes: they refresh the load and never change health). A foreign OIP server
 * (which cannot heartbeat) is probed over the OIP health routes, and stays registered until it is
 * unregistered.
 */
import type { Logger } from "../util/log.js";
import type { ServicePolicies } from "./policies.js";
import { targetOf, type Registry, type ReplicaEntry } from "../routing/registry.js";
import type { ReplicaLoad } from "../routing/registry.js";

/** Failed probes in a row before a replica is taken out of rotation. */
export const UNHEALTHY_AFTER = 3;

export interface HealthCheckerOptions {
  registry: Registry;
  policies: ServicePolicies;
  /** Sends one readiness probe; resolves with what the replica reported, rejects when it is not ready or did not answer in time. */
  probe(entry: ReplicaEntry, timeoutMs: number): Promise<Record<string, unknown>>;
  logger: Logger;
  /** How often due probes are looked for (ms); default 50. */
  tickMs?: number;
  /** The clock intervals are measured on (default `Date.now`); tests pass their own and call {@link HealthChecker.probeDue}. */
  now?: () => number;
}

interface ProbeSlot {
  /** When the next health probe is due (ms, on the checker's clock). */
  nextAt: number;
  /** When the last probe of either kind (health, load) started. */
  lastAny: number;
  busy: boolean;
}

/**
 * After a failed probe the next one comes this soon (or at the interval, if shorter): a replica
 * that stopped answering (a stopped process, a wedged event loop) is out of rotation within a few
 * seconds, not three whole intervals (30 s at the default 10 s).
 */
export const RETRY_AFTER_FAILURE_MS = 1_000;

export class HealthChecker {
  readonly #o: HealthCheckerOptions;
  readonly #slots = new Map<string, ProbeSlot>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: HealthCheckerOptions) {
    this.#o = options;
    options.registry.onChange((event, entry) => {
      if (event === "unregister") this.#slots.delete(entry.replicaId);
    });
  }

  start(): void {
    this.#timer = setInterval(() => this.probeDue(), this.#o.tickMs ?? 50);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** The probe period of one replica: its service's `health_check_interval`, else its heartbeat interval. */
  intervalOf(entry: ReplicaEntry): number {
    return this.#o.policies.of(entry).healthCheckIntervalMs ?? entry.heartbeatIntervalMs;
  }

  /** Starts a probe of every replica whose interval has passed and that has none running; `start()` calls it every `tickMs`. */
  probeDue(): void {
    const now = (this.#o.now ?? Date.now)();
    for (const entry of this.#o.registry.list()) {
      let slot = this.#slots.get(entry.replicaId);
      // A newly registered replica is probed at once: its load (queue, workers, CPU, memory) shows
      // in the status API without waiting a whole interval.
      if (!slot)
        this.#slots.set(entry.replicaId, (slot = { nextAt: Number.NEGATIVE_INFINITY, lastAny: Number.NEGATIVE_INFINITY, busy: false }));
      if (slot.busy) continue;
      const interval = this.intervalOf(entry);
      const health = now >= slot.nextAt;
      // An autoscaled service's replicas are asked for their load between health probes.
      const loadEvery = this.#o.policies.of(entry).loadIntervalMs;
      if (!health && (loadEvery === undefined || now - slot.lastAny < loadEvery)) continue;
      slot.busy = true;
      slot.lastAny = now;
      entry.inFlightPeak = entry.inFlight;
      void this.#check(entry, slot, interval, now, health ? interval : Math.min(interval, loadEvery!), health);
    }
  }

  async #check(
    entry: ReplicaEntry,
    slot: ProbeSlot,
    interval: number,
    startedAt: number,
    periodMs: number,
    health: boolean,
  ): Promise<void> {
    let error: string | undefined;
    let report: Record<string, unknown> | undefined;
    try {
      report = await this.#o.probe(entry, probeTimeout(periodMs));
    } catch (err) {
      error = (err as Error).message;
    }
    slot.busy = false;
    // A load probe leaves the health probes' schedule alone.
    if (health)
      slot.nextAt = error === undefined ? startedAt + interval : (this.#o.now ?? Date.now)() + Math.min(interval, RETRY_AFTER_FAILURE_MS);
    // The replica may have left or re-registered from another endpoint meanwhile.
    const current = this.#o.registry.get(entry.replicaId);
    if (!current || targetOf(current) !== targetOf(entry)) return;
    if (report?.load !== null && typeof report?.load === "object") {
      current.load = report.load as ReplicaLoad;
      current.loadInFlight = current.inFlightPeak;
    }
    // A load probe that passes is as good as a health probe; one that fails is left to the next health probe.
    if (health || error === undefined) this.#record(current, error);
  }

  #record(entry: ReplicaEntry, error: string | undefined): void {
    const { registry, logger } = this.#o;
    if (error === undefined) {
      if (!entry.healthy) logger.info({ replica: entry.replicaId }, "replica passed its health check; back in rotation");
      // It answered: it is making progress, whatever its long requests are doing (see the forwarder's stall check).
      entry.progressAt = Date.now();
      // A foreign OIP server does not heartbeat: its last passing probe is when it was last heard from.
      if (entry.protocol !== undefined) registry.heartbeat(entry.replicaId);
      entry.probeFailures = 0;
      entry.probeError = undefined;
      registry.setHealthy(entry.replicaId, true);
      return;
    }
    entry.probeFailures++;
    entry.probeError = error;
    if (entry.healthy && entry.probeFailures >= UNHEALTHY_AFTER) {
      logger.warn({ replica: entry.replicaId, failures: entry.probeFailures, error }, "replica failed its health checks; out of rotation");
      registry.setHealthy(entry.replicaId, false);
    }
  }
}

/**
 * A probe may take the whole period, but at least 1 s (a loaded machine) and at most 2 s: it is a
 * readiness check over an open connection, and one that has not answered in 2 s counts as failed
 * (with the quick retries after a failure, a stopped replica is unhealthy ~6 s after its first
 * missed probe).
 */
export function probeTimeout(intervalMs: number): number {
  return Math.min(Math.max(intervalMs, 1_000), 2_000);
}
