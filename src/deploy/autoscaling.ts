/**
 * The controller's autoscaling (docs/autoscaling.md): one {@link ServiceAutoscaler} per service
 * with an `autoscaling` section, each sampled every `metrics_interval_s` on the controller's
 * clock. A sample is the requests ongoing across the service — per replica what the API server
 * has sent it and not had answered, plus what it last reported (running + queued, from the API
 * server's probes) beyond that (direct clients, other API servers) — plus the requests waiting at
 * the API server for a replica of a service scaled to zero. A decision becomes the service's replica count (the same input `/api/scale`
 * sets for other services) and the controller's loop does the rest: starting, or draining the
 * idlest replicas (reconcile.ts).
 *
 * Scale to zero needs the API server to know what a service serves without a replica
 * (gateway/cold-start.ts): a service with `min_replicas: 0` is made wakeable there, and until the
 * API server knows its capabilities (from `anyserve up`'s look at the app, or from a replica's
 * registration) it keeps one replica. A request waiting for a cold service starts one at once.
 */
import { AnyServeError } from "../errors.js";
import type { AutoscalingView } from "../gateway/status.js";
import type { Logger } from "../util/log.js";
import { type Decision, ServiceAutoscaler } from "./autoscaler.js";
import type { Clock } from "./controller.js";
import { type Headroom, headroom, maxReplicasOf, type NodeCapacity } from "./placement.js";
import type { DeploymentFile, ServiceConfig } from "../config/schema.js";

/** What the autoscaling needs of the API server's cold starts (gateway/cold-start.ts `ColdStarts`). */
export interface ColdStartControl {
  setWakeable(service: string, policy: { queueLimit: number } | undefined): void;
  knows(service: string): boolean;
  forget(service: string): void;
  waiting(service: string): number;
  onDemand(listener: (service: string, waiting: number) => void): void;
}

/** The controller, as the autoscaling sees it. */
export interface AutoscalingHost {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly node: NodeCapacity;
  /** The deployment as applied, and each service's replica count now. */
  current(): { file: DeploymentFile | undefined; counts: Record<string, number> };
  /** Requests ongoing at the service's replicas that serve (not those draining). */
  ongoing(service: string): number;
  /** Replicas of the service serving now. */
  serving(service: string): number;
  /** Makes `n` the service's count (a decision was made). */
  setCount(service: string, n: number, decision: Decision): void;
}

export class Autoscaling {
  readonly #host: AutoscalingHost;
  readonly #cold: ColdStartControl | undefined;
  readonly #scalers = new Map<string, ServiceAutoscaler>();
  readonly #timers = new Map<string, () => void>();

  constructor(host: AutoscalingHost, cold: ColdStartControl | undefined) {
    this.#host = host;
    this.#cold = cold;
    cold?.onDemand((service, waiting) => this.#wake(service, waiting));
  }

  isAutoscaled(service: string): boolean {
    return this.#scalers.has(service);
  }

  /**
   * The count of each autoscaled service in `file`: its count so far brought within the new
   * bounds, or `min_replicas` for a service new to autoscaling — but one replica while the API
   * server does not know what a service scaled to zero serves. Changes nothing.
   */
  countsFor(file: DeploymentFile, previous: Record<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, s] of Object.entries(file.services)) {
      if (!s.autoscaling) continue;
      const a = s.autoscaling;
      const before = previous[name];
      const n = before === undefined ? a.min_replicas : Math.max(a.min_replicas, Math.min(before, maxReplicasOf(a, this.#host.node)));
      out[name] = n === 0 && !this.#canWake(name) ? 1 : n;
    }
    return out;
  }

  /**
   * After an apply: an autoscaler per autoscaled service (bounds changed by the apply are recorded
   * as decisions), wakeable at the API server when it may scale to zero, sampled on its interval;
   * services no longer autoscaled are let go. `changedApp`: services whose replicas are replaced
   * (their capabilities may change).
   */
  configure(file: DeploymentFile, before: Record<string, number>, after: Record<string, number>, changedApp: Set<string>): void {
    const now = this.#host.clock.now();
    for (const name of [...this.#scalers.keys()]) {
      if (file.services[name]?.autoscaling) continue;
      this.#scalers.delete(name);
      this.#timers.get(name)?.();
      this.#timers.delete(name);
      this.#cold?.setWakeable(name, undefined);
    }
    for (const [name, s] of Object.entries(file.services)) {
      if (!s.autoscaling) continue;
      const max = maxReplicasOf(s.autoscaling, this.#host.node);
      let a = this.#scalers.get(name);
      if (a) a.configure(s.autoscaling, max);
      else this.#scalers.set(name, (a = new ServiceAutoscaler(s.autoscaling, max)));
      const from = before[name];
      if (from !== undefined && from !== after[name]) a.clamp(now, from, { max: after[name]! });
      if (changedApp.has(name)) this.#cold?.forget(name);
      this.#cold?.setWakeable(name, s.autoscaling.min_replicas === 0 ? { queueLimit: wakeQueueOf(s) } : undefined);
      this.#schedule(name, s.autoscaling.metrics_interval_s * 1000);
    }
  }

  /** The status of an autoscaled service (undefined for one that is not). */
  view(service: string, desired: number): AutoscalingView | undefined {
    const a = this.#scalers.get(service);
    if (!a) return undefined;
    return { ...a.view(desired, this.#host.clock.now()), running: this.#host.serving(service) };
  }

  /** `/api/scale` of an autoscaled service is refused: its bounds are what an operator sets. */
  refuseManualScale(service: string): void {
    const a = this.#scalers.get(service);
    if (!a) return;
    throw new AnyServeError(
      "CONFIG_INVALID",
      `service '${service}' is autoscaled (min_replicas ${a.min}, max_replicas ${a.max}): change autoscaling.min_replicas / max_replicas with anyserve apply instead of scaling it by hand`,
    );
  }

  stop(): void {
    for (const cancel of this.#timers.values()) cancel();
    this.#timers.clear();
  }

  /** Samples `service` every `everyMs` on the controller's clock. */
  #schedule(service: string, everyMs: number): void {
    this.#timers.get(service)?.();
    const tick = (): void => {
      this.#timers.set(service, this.#host.clock.schedule(tick, everyMs));
      this.#sample(service);
    };
    this.#timers.set(service, this.#host.clock.schedule(tick, everyMs));
  }

  #sample(service: string): void {
    const a = this.#scalers.get(service);
    const { file, counts } = this.#host.current();
    if (!a || !file?.services[service]) return;
    const now = this.#host.clock.now();
    a.observe(now, this.#host.ongoing(service) + (this.#cold?.waiting(service) ?? 0));
    const current = counts[service] ?? a.min;
    const d = a.decide(now, current, this.#room(file, counts, service));
    // Never to zero while nothing could wake the service again.
    if (d && !(d.to === 0 && !this.#canWake(service))) this.#host.setCount(service, d.to, d);
  }

  /** A request waits at the API server for a service with no replica: start one now. */
  #wake(service: string, waiting: number): void {
    const a = this.#scalers.get(service);
    const { file, counts } = this.#host.current();
    if (!a || !file?.services[service] || (counts[service] ?? 0) > 0) return;
    const room = this.#room(file, counts, service);
    if (room.max < 1) {
      this.#host.logger.warn({ service, reason: room.limitedBy }, "autoscaler: a request waits, but no replica fits on this node");
      return;
    }
    const d = a.wake(this.#host.clock.now(), 0, waiting);
    if (d) this.#host.setCount(service, d.to, d);
  }

  #room(file: DeploymentFile, counts: Record<string, number>, service: string): Headroom {
    return headroom(file, this.#host.node, counts, service);
  }

  #canWake(service: string): boolean {
    return this.#cold?.knows(service) === true;
  }
}

/** Requests that may wait at the API server for a cold service's first replica: its `queue_size`, at least 1. */
function wakeQueueOf(s: ServiceConfig): number {
  return Math.max(1, s.performance.queue_size);
}
