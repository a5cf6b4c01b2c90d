/**
 * Picking the replica for a call, in two steps: availability first — not draining, not unhealthy
 * (health checker), not ejected (outlier detector), circuit not open for this capability, not
 * stalled while another can serve — then the service's balancing strategy among what is left.
 * When nothing matches: a service scaled to zero makes the call wait ({@link ColdService}),
 * `unmatched: delegate` picks a random replica to start delegation, else 404 (503 during warm-up).
 */
import { AnyServeError } from "../errors.js";
import { describeModel, type IncomingCall } from "../protocol/call.js";
import { formatCapability, modelTypeFallback, type CapabilityMap } from "../protocol/capability.js";
import { describeUnavailable, preferWarm } from "../routing/candidates.js";
import { isRoutable, type Registry, type ReplicaEntry, type Route } from "../routing/registry.js";
import type { ServicePolicies, ServicePolicy } from "./policies.js";
import type { CircuitBreakers } from "./resilience/circuit-breaker.js";
import type { OutlierDetector } from "./resilience/outlier-detector.js";
import type { Target } from "./transports/transport.js";
import type { ColdStarts } from "./cold-start.js";

export interface PickerOptions {
  registry: Registry;
  /** Balancing strategy and failover per service. */
  policies: ServicePolicies;
  /** What to do when nothing matches: answer 404, or pick a random replica to start delegation (seed scenario 2). */
  unmatched: "error" | "delegate";
  maxDelegationDepth: number;
  /**
   * A replica with requests in flight and no progress (no answer, no stream chunk, no passed probe)
   * for this long (ms) is passed over while another can serve: a stopped or wedged process stops
   * getting traffic before its health probes fail. Default {@link DEFAULT_STALL_MS}; 0 turns it off.
   */
  stallMs?: number;
  /**
   * For this long after start (ms), a query nothing matches is 503 REGISTRY_WARMING_UP (retryable)
   * instead of 404: after a restart the registry is empty until replicas register again. Default 0.
   */
  warmupMs?: number;
}

/** The default of {@link PickerOptions.stallMs} for an API server (`api_server.stall_timeout`; a test checks they agree). */
export const DEFAULT_STALL_MS = 5_000;

/** One routing decision: the replica, and the query its route matched (a model route's may be `type=m`). */
export interface Pick extends Target {
  policy: ServicePolicy;
  route: Route;
}

/** Thrown by {@link ReplicaPicker.choose} when failover has excluded every candidate: the forwarder rethrows its last failure. */
export const NO_OTHER_REPLICA = Symbol("no other replica");

/** Thrown by {@link ReplicaPicker.choose} when nothing serves the call but a service scaled to zero would: the call waits for it. */
export class ColdService {
  constructor(readonly service: string) {}
}

export class ReplicaPicker {
  readonly #o: PickerOptions;
  readonly #outliers: OutlierDetector;
  readonly #circuits: CircuitBreakers;
  readonly #stallMs: number;
  /** Until when (ms epoch) "nothing matches" means "not registered yet". */
  #warmUntil: number;
  /** Services scaled to zero: a call only they would serve waits for their first replica (gateway/cold-start.ts). */
  coldStarts: ColdStarts | undefined;

  constructor(options: PickerOptions, outliers: OutlierDetector, circuits: CircuitBreakers) {
    this.#o = options;
    this.#outliers = outliers;
    this.#circuits = circuits;
    this.#stallMs = options.stallMs ?? DEFAULT_STALL_MS;
    this.#warmUntil = Date.now() + (options.warmupMs ?? 0);
  }

  /** Ends the warm-up now. */
  endWarmup(): void {
    this.#warmUntil = 0;
  }

  /** Milliseconds of warm-up left (0 once over). */
  get warmupLeftMs(): number {
    return this.#warmUntil === 0 ? 0 : Math.max(0, this.#warmUntil - Date.now());
  }

  /** The query a model route is served with: `model=m`, or `type=m` when no replica has `model=m` ({@link modelTypeFallback}). */
  modelQuery(query: CapabilityMap): CapabilityMap {
    if (this.#o.registry.route(query).replicas.length > 0) return query;
    return modelTypeFallback(query) ?? query;
  }

  /**
   * Availability, then the strategy. `excluded` are replicas failover already tried for this call;
   * when they were the only candidates this throws NO_OTHER_REPLICA.
   */
  choose(call: IncomingCall, excluded: readonly string[] | undefined): Pick {
    const { registry } = this.#o;
    const depth = call.depth ?? 0;
    const tried = call.tried ?? [];
    let query = call.query;
    let route = registry.route(query);
    // A model route falls back to `type=m` when nothing has `model=m`; the replica is sent that query.
    if (route.replicas.length === 0 && call.model !== undefined) {
      const byType = modelTypeFallback(query);
      if (byType !== undefined) {
        query = byType;
        route = registry.route(byType);
      }
    }
    if (depth > this.#o.maxDelegationDepth) throw route.replicas.length === 0 ? this.#notFound(call) : this.#exhausted(call.query, tried);
    let candidates = route.replicas;
    if (tried.length > 0) candidates = candidates.filter((e) => !tried.includes(e.replicaId));
    if (candidates.length === 0) {
      const cold = tried.length === 0 && this.coldStarts !== undefined ? this.coldStarts.serviceFor(call.query) : undefined;
      if (cold !== undefined) throw new ColdService(cold);
      const entry = this.#unmatched(route, call, tried);
      // A replica picked to start delegation is sent the query as the caller gave it.
      const asked = query === call.query ? route : registry.route(call.query);
      return { entry, policy: this.#o.policies.of(entry), route, query: call.query, queryBytes: asked.queryBytes };
    }
    if (excluded !== undefined) {
      candidates = candidates.filter((e) => !excluded.includes(e.replicaId));
      if (candidates.length === 0) throw NO_OTHER_REPLICA;
    }
    const available = this.#available(candidates, route.key);
    if (available.length === 0) {
      if (excluded !== undefined) throw NO_OTHER_REPLICA;
      throw this.#notReady(candidates, query, route.key);
    }
    const policy = this.#o.policies.of(available[0]!);
    const entry = policy.balancer.pick(
      preferWarm(available, query),
      call.affinityKey === undefined ? undefined : { key: call.affinityKey },
    );
    // A half-open circuit lets one trial through: the pick takes it.
    if (this.#circuits.openCount > 0) this.#circuits.allows(entry.replicaId, route.key);
    return { entry, policy, route, query, queryBytes: route.queryBytes };
  }

  /**
   * The replica a call for `query` would go to now (the seed's `GET /route`): the same
   * availability and strategy as a forwarded call, without taking a half-open circuit's trial.
   * Throws NO_MATCHING_CAPABILITY or NO_READY_REPLICA.
   */
  lookup(query: CapabilityMap): ReplicaEntry {
    const route = this.#o.registry.route(query);
    if (route.replicas.length === 0) throw this.#notFound({ query });
    const available = this.#available(route.replicas, route.key);
    if (available.length === 0) throw this.#notReady(route.replicas, query, route.key);
    return this.#o.policies.of(available[0]!).balancer.pick(preferWarm(available, query));
  }

  /** Whether a replica is stalled: requests in flight and no progress for the stall time (status API, and choosing). */
  isStalled(e: ReplicaEntry, now = Date.now()): boolean {
    return this.#stallMs > 0 && e.inFlight > 0 && now - e.progressAt > this.#stallMs;
  }

  #notReady(candidates: ReplicaEntry[], query: CapabilityMap, key: string): AnyServeError {
    return new AnyServeError(
      "NO_READY_REPLICA",
      `${candidates.length} replica(s) match ${formatCapability(query)} but none is ready: ${describeUnavailable(candidates, this.#outliers, this.#circuits, key)}`,
    );
  }

  /**
   * Candidates that may take a request now; the same array when all may (the common case).
   * Stalled replicas (see {@link PickerOptions.stallMs}) are left out only while another can
   * serve: a stall is a guess (a long request looks the same), not a verdict like a failed probe.
   */
  #available(candidates: ReplicaEntry[], key: string): ReplicaEntry[] {
    const ejected = this.#outliers.ejectedCount > 0;
    const open = this.#circuits.openCount > 0;
    const stalled = this.#stalled(candidates);
    if (!ejected && !open && stalled === undefined && candidates.every(isRoutable)) return candidates;
    const ok = candidates.filter(
      (e) => isRoutable(e) && !(ejected && this.#outliers.isEjected(e.replicaId)) && !(open && this.#circuits.blocks(e.replicaId, key)),
    );
    if (stalled === undefined) return ok;
    const moving = ok.filter((e) => !stalled.has(e));
    return moving.length > 0 ? moving : ok;
  }

  /** The candidates with requests in flight and no progress for the stall time; undefined when none (the common case). */
  #stalled(candidates: ReplicaEntry[]): Set<ReplicaEntry> | undefined {
    if (this.#stallMs <= 0) return undefined;
    let out: Set<ReplicaEntry> | undefined;
    let now = 0;
    for (const e of candidates) {
      if (e.inFlight === 0) continue; // idle: nothing to be late with (and no clock read)
      if (this.isStalled(e, (now ||= Date.now()))) (out ??= new Set()).add(e);
    }
    return out;
  }

  /**
   * No untried candidate. Replicas match but every one was tried: 508, delegation went round.
   * Nothing matches at all: a random replica to start delegation (`--unmatched delegate`, within
   * the depth limit), else 404 — whatever the delegation headers say, a request nobody serves is
   * "not found", not "exhausted".
   */
  #unmatched(route: Route, call: IncomingCall, tried: string[]): ReplicaEntry {
    if (route.replicas.length > 0) throw this.#exhausted(call.query, tried);
    if (this.#o.unmatched === "delegate" && (call.depth ?? 0) < this.#o.maxDelegationDepth) {
      const pick = this.#o.registry.random(new Set(tried));
      if (pick) return pick;
    }
    throw this.#notFound(call);
  }

  /**
   * 404: MODEL_NOT_FOUND for an OIP model call, NO_MATCHING_CAPABILITY otherwise; names a few
   * registered capabilities, and the replicas a delegated call went through.
   */
  #notFound(call: { query: CapabilityMap; model?: IncomingCall["model"]; tried?: string[] | undefined }): AnyServeError {
    const warmup = this.warmupLeftMs;
    if (warmup > 0) {
      return new AnyServeError(
        "REGISTRY_WARMING_UP",
        `nothing offers ${formatCapability(call.query)} yet: the API server started recently and replicas are still registering (${Math.ceil(warmup / 1000)} s of warm-up left); retry`,
      );
    }
    const via = call.tried !== undefined && call.tried.length > 0 ? ` (delegated by ${describeTried(call.tried)})` : "";
    const registered = `${this.#o.registry.describeCapabilities()}${via}`;
    if (call.model) return new AnyServeError("MODEL_NOT_FOUND", `${describeModel(call.model)} is not served by any replica; ${registered}`);
    return new AnyServeError("NO_MATCHING_CAPABILITY", `no replica offers ${formatCapability(call.query)}; ${registered}`);
  }

  #exhausted(query: CapabilityMap, tried: string[]): AnyServeError {
    return new AnyServeError(
      "DELEGATION_EXHAUSTED",
      `no replica could serve ${formatCapability(query)} within ${this.#o.maxDelegationDepth} delegation hop(s); tried ${describeTried(tried)}`,
      { tried },
    );
  }
}

/** The replica ids a delegated call names, for messages: a few, each cut short (they come from a header). */
function describeTried(tried: string[]): string {
  if (tried.length === 0) return "none";
  const shown = tried.slice(0, 5).map((id) => (id.length > 64 ? `${id.slice(0, 64)}…` : id));
  return tried.length > 5 ? `${shown.join(", ")} and ${tried.length - 5} more` : shown.join(", ");
}
