/**
 * Replaces replicas that are alive but not serving. The health checker takes a replica out of
 * rotation after 3 failed readiness probes, and the registry drops one that stops heartbeating; a
 * process in either state (stuck event loop, SIGSTOPped, wedged native code) would otherwise hold
 * its place in the deployment forever, since the supervisor only restarts processes that exit.
 * After `monitoring.unhealthy_restart_after` seconds of being unhealthy or unregistered while its
 * supervisor says it runs, the replica is killed (SIGKILL: a stuck process cannot drain) and the
 * supervisor restarts it like any crash — with back-off, and given up when it crash-loops. Ray
 * Serve does the same with replicas that fail their health checks.
 */
import type { Registry } from "../routing/registry.js";
import type { Logger } from "../util/logger.js";

/** A supervised, running replica the replacer may restart, and after how long unhealthy (ms; null: never). */
export interface Replaceable {
  replicaId: string;
  restartAfterMs: number | null;
  replace(reason: string): void;
}

/** How often the replicas are looked at besides every routing change (one that never registers makes no change). */
const SWEEP_MS = 1_000;

export class UnhealthyReplacer {
  readonly #registry: Registry;
  readonly #logger: Logger;
  readonly #running: () => Replaceable[];
  /** Replica id → the timer that replaces it if it is still not serving when it fires. */
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #sweep: NodeJS.Timeout;

  constructor(o: { registry: Registry; logger: Logger; running: () => Replaceable[] }) {
    this.#registry = o.registry;
    this.#logger = o.logger;
    this.#running = o.running;
    o.registry.onRoutingChange(() => this.#check());
    this.#sweep = setInterval(() => this.#check(), SWEEP_MS);
    this.#sweep.unref();
  }

  /** Cancels every pending replacement (the deployment is stopping). */
  stop(): void {
    clearInterval(this.#sweep);
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** Why `replicaId` is not serving, or undefined when it is registered and healthy. */
  #problem(replicaId: string): string | undefined {
    const entry = this.#registry.get(replicaId);
    if (entry === undefined) return "not registered (no heartbeat)";
    if (entry.healthy) return undefined;
    return `${entry.probeFailures} failed health checks${entry.probeError ? `: ${entry.probeError}` : ""}`;
  }

  #check(): void {
    const live = new Set<string>();
    for (const target of this.#running()) {
      const id = target.replicaId;
      live.add(id);
      const pending = this.#timers.get(id);
      if (this.#problem(id) === undefined || target.restartAfterMs === null) {
        if (pending) this.#cancel(id, pending);
        continue;
      }
      if (pending) continue;
      const timer = setTimeout(() => this.#expire(target), target.restartAfterMs);
      timer.unref();
      this.#timers.set(id, timer);
    }
    for (const [id, timer] of this.#timers) if (!live.has(id)) this.#cancel(id, timer);
  }

  #cancel(id: string, timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.#timers.delete(id);
  }

  #expire(target: Replaceable): void {
    this.#timers.delete(target.replicaId);
    const problem = this.#problem(target.replicaId);
    if (problem === undefined) return;
    const reason = `not serving for ${(target.restartAfterMs ?? 0) / 1000} s (${problem})`;
    this.#logger.warn({ replica: target.replicaId, reason }, "replacing a replica that is alive but not serving");
    target.replace(reason);
  }
}
