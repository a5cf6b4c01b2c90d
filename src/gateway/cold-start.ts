/**
 * Scale to zero at the API server. A service autoscaled with `min_replicas: 0` may run no replica
 * at all; the API server still knows what it serves — the capabilities its replicas last
 * registered, or what `anyserve up` read from its app before starting anything — so the service
 * stays visible as `cold` (`/registry`, the status API). A request that only such a cold service
 * would serve waits here instead of failing: the controller hears of it ({@link ColdStarts.onDemand})
 * and starts a replica at once; when a replica matching the request is registered and routable,
 * the request goes on to it through the ordinary routing.
 *
 * Bounded both ways: a request waits at most its own deadline (504 DEADLINE_EXCEEDED, naming the
 * cold start), and at most `queueLimit` requests wait per service (the service's `queue_size`, at
 * least 1): one more is refused at once with 503 QUEUE_FULL and a Retry-After of the expected cold
 * start. A client that leaves stops waiting (CANCELLED). Nothing here grows with what clients send:
 * known capabilities are per configured service, waiters per service are capped.
 *
 * Each cold start — from the first request that found the service cold to the first replica able
 * to serve it — is timed for the metrics (`anyserve_autoscaler_cold_start_seconds`).
 */
import { AnyServeError } from "../errors.js";
import { HistogramChild } from "../metrics/scraped.js";
import { type CapabilityMap, formatCapability, matches, modelTypeFallback } from "../protocol/capability.js";
import { isRoutable, type Registry } from "../routing/registry.js";
import type { CancelSignal } from "../util/cancel.js";

/** Seconds: 50 ms … 5 min, where a replica's start (a process, its app, its workers) falls. */
export const COLD_START_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300];

/** How a service scales from zero: set by the deployment controller for autoscaled services with `min_replicas: 0`. */
export interface WakePolicy {
  /** Requests that may wait at once for its first replica; more get 503 QUEUE_FULL. */
  queueLimit: number;
}

/** One cold service as `/registry` and the status show it. */
export interface ColdServiceView {
  service: string;
  /** `cold`: no replica and none asked for; `starting`: requests wait for the replica being started. */
  state: "cold" | "starting";
  capabilities: CapabilityMap[];
  waiting: number;
}

/** A service's cold-start record, read by the metrics. */
export interface ColdStartStats {
  count: number;
  seconds: HistogramChild;
}

interface Waiter {
  query: CapabilityMap;
  resolve: () => void;
  reject: (err: AnyServeError) => void;
}

export class ColdStarts {
  readonly #registry: Registry;
  readonly #now: () => number;
  /** Services that scale from zero, and how many requests may wait for each. */
  readonly #wakeable = new Map<string, WakePolicy>();
  /** The capabilities each wakeable service serves, as last known. */
  readonly #known = new Map<string, CapabilityMap[]>();
  readonly #waiting = new Map<string, Set<Waiter>>();
  /** Since when a cold start of the service has been under way (its first waiting request). */
  readonly #coldSince = new Map<string, number>();
  readonly #stats = new Map<string, ColdStartStats>();
  readonly #demand: ((service: string, waiting: number) => void)[] = [];

  constructor(registry: Registry, now: () => number = Date.now) {
    this.#registry = registry;
    this.#now = now;
    registry.onChange((event, entry) => {
      // Every replica of a wakeable service teaches what the service serves; the last one wins.
      if (event === "register" && entry.service !== undefined && entry.protocol === undefined && this.#wakeable.has(entry.service)) {
        this.#known.set(
          entry.service,
          entry.capabilities.map((c) => c.capability),
        );
      }
    });
    registry.onRoutingChange(() => this.#release());
  }

  /** Makes `service` scale from zero (or, with undefined, no longer); the controller calls it on every apply. */
  setWakeable(service: string, policy: WakePolicy | undefined): void {
    if (policy) {
      this.#wakeable.set(service, policy);
      // Replicas already running tell what it serves (it was autoscaled with min_replicas ≥ 1 before).
      const running = this.#known.has(service)
        ? undefined
        : this.#registry.list().find((e) => e.service === service && e.protocol === undefined);
      if (running)
        this.#known.set(
          service,
          running.capabilities.map((c) => c.capability),
        );
    } else {
      this.#wakeable.delete(service);
      this.#known.delete(service);
    }
  }

  /** What `service` serves, when it is known before any replica runs (`anyserve up` loads each app first). */
  learn(service: string, capabilities: CapabilityMap[]): void {
    this.#known.set(service, capabilities);
  }

  /** Forgets what `service` serves (its app changed: the next replica tells again). */
  forget(service: string): void {
    this.#known.delete(service);
  }

  /** True when the API server knows what `service` serves without a replica. */
  knows(service: string): boolean {
    return this.#known.has(service);
  }

  /** Requests waiting for a replica of `service`. */
  waiting(service: string): number {
    return this.#waiting.get(service)?.size ?? 0;
  }

  /** Told of every request that starts waiting (service, requests now waiting for it). */
  onDemand(listener: (service: string, waiting: number) => void): void {
    this.#demand.push(listener);
  }

  stats(): ReadonlyMap<string, ColdStartStats> {
    return this.#stats;
  }

  /**
   * The wakeable service that would serve `query` when no replica does now (the model route's
   * `type=m` fallback included); undefined when none would.
   */
  serviceFor(query: CapabilityMap): string | undefined {
    const byType = modelTypeFallback(query);
    for (const [service, caps] of this.#known) {
      if (!this.#wakeable.has(service)) continue;
      if (caps.some((c) => matches(c, query) || (byType !== undefined && matches(c, byType)))) return service;
    }
    return undefined;
  }

  /**
   * Waits until a replica that can take `query` is registered and routable; rejects with
   * QUEUE_FULL (too many waiting), DEADLINE_EXCEEDED (after `timeoutMs`) or CANCELLED.
   */
  wait(service: string, query: CapabilityMap, timeoutMs: number, signal: CancelSignal): Promise<void> {
    const policy = this.#wakeable.get(service);
    let waiters = this.#waiting.get(service);
    if (!waiters) this.#waiting.set(service, (waiters = new Set()));
    const limit = Math.max(1, policy?.queueLimit ?? 1);
    if (waiters.size >= limit) {
      const retry = this.#expectedSeconds(service);
      return Promise.reject(
        new AnyServeError(
          "QUEUE_FULL",
          `service '${service}' has no replica yet (scaled to zero) and ${waiters.size} request(s) already wait for one (the most that may, queue_size); retry in ${retry} s`,
          { retry_after_s: retry },
        ),
      );
    }
    if (signal.aborted) return Promise.reject(new AnyServeError("CANCELLED", "the client went away"));
    const started = this.#now();
    if (!this.#coldSince.has(service)) this.#coldSince.set(service, started);
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        waiters.delete(waiter);
      };
      const waiter: Waiter = {
        query,
        resolve: () => {
          done();
          resolve();
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      const onAbort = (): void => waiter.reject(new AnyServeError("CANCELLED", "the client went away while the service was starting"));
      const timer = setTimeout(
        () =>
          waiter.reject(
            new AnyServeError(
              "DEADLINE_EXCEEDED",
              `no replica of service '${service}' (scaled to zero) could take ${formatCapability(query)} within the request's ${timeoutMs} ms: a replica is starting`,
            ),
          ),
        Math.max(0, timeoutMs),
      );
      signal.addEventListener("abort", onAbort, { once: true });
      waiters.add(waiter);
      for (const listener of this.#demand) listener(service, waiters.size);
      // A replica may have become routable between the routing decision and now.
      this.#release();
    });
  }

  /** Cold services for `/registry` and the status: every wakeable service with no routable replica. */
  describe(): ColdServiceView[] {
    const out: ColdServiceView[] = [];
    for (const [service, caps] of this.#known) {
      if (!this.#wakeable.has(service) || this.#hasRoutable(service)) continue;
      const waiting = this.waiting(service);
      out.push({ service, state: this.#coldSince.has(service) ? "starting" : "cold", capabilities: caps, waiting });
    }
    return out;
  }

  /** Lets go every waiter whose query a routable replica now takes, and times finished cold starts. */
  #release(): void {
    for (const waiters of this.#waiting.values()) {
      for (const w of waiters) if (this.#servable(w.query)) w.resolve();
    }
    for (const [service, since] of this.#coldSince) {
      if (!this.#hasRoutable(service)) continue;
      this.#coldSince.delete(service);
      let s = this.#stats.get(service);
      if (!s) this.#stats.set(service, (s = { count: 0, seconds: new HistogramChild(COLD_START_BUCKETS) }));
      s.count++;
      s.seconds.observe((this.#now() - since) / 1000);
    }
  }

  /** A routable replica takes `query` (or its model route's `type=m` fallback). */
  #servable(query: CapabilityMap): boolean {
    if (this.#registry.lookupAvailable(query).length > 0) return true;
    const byType = modelTypeFallback(query);
    return byType !== undefined && this.#registry.lookupAvailable(byType).length > 0;
  }

  #hasRoutable(service: string): boolean {
    return this.#registry.list().some((e) => e.service === service && isRoutable(e));
  }

  /** Seconds a caller should wait before retrying: the last cold starts' mean, at least 1 s. */
  #expectedSeconds(service: string): number {
    const s = this.#stats.get(service);
    const mean = s && s.seconds.count > 0 ? s.seconds.sum / s.seconds.count : 1;
    return Math.max(1, Math.ceil(mean));
  }
}
