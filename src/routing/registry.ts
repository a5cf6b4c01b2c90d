/**
 * The capability registry: which replica offers which capabilities, indexed by key=value so that a
 * lookup reads only the replicas that share the query's rarest pair, never every replica.
 * Candidate lists are cached per query until the registry changes, for at most
 * {@link MAX_CACHED_ROUTES} queries (the oldest leaves first), and only for queries something
 * matches: a client inventing capability values cannot grow the cache.
 */
import { AnyServeError } from "../errors.js";
import { capabilityKey, formatCapability, matches, type CapabilityMap } from "../protocol/capability.js";
import { DrainStates } from "./drain-state.js";

/** `warm` = workers running; `cold` = started on demand; `failed` = cannot start. */
export type CapabilityState = "warm" | "cold" | "failed";

/** What a replica reports with each health probe answer (queue, workers, CPU, memory). */
export interface ReplicaLoad {
  in_flight?: number;
  queue_depth?: number;
  workers?: { starting: number; warm: number; idle: number; failed: number };
  process?: { rss_mb: number; cpu_percent: number };
}

export interface RegisteredCapability {
  capability: CapabilityMap;
  state: CapabilityState;
}

/**
 * A replica that is not anyserve but an Open Inference Protocol v2 server (the seed's replicas,
 * Triton, KServe, MLServer): the gateway calls it over OIP gRPC at `endpoint`, or OIP REST at
 * `httpEndpoint`, instead of frames.
 */
export type ForeignProtocol = "oip-grpc" | "oip-rest";

/** What a replica tells the registry about itself. */
export interface ReplicaRegistration {
  replicaId: string;
  /** gRPC endpoint `host:port` (the seed's `endpoint`). */
  endpoint: string;
  /** REST + frame endpoint `http://host:port` (an `oip-rest` replica's REST base URL). */
  httpEndpoint?: string;
  /** Unset for anyserve replicas (frames); see {@link ForeignProtocol}. */
  protocol?: ForeignProtocol;
  capabilities: RegisteredCapability[];
  service?: string;
  node?: string;
  /** How often the replica heartbeats; it is dropped after 3 silent intervals. */
  heartbeatIntervalMs: number;
  /**
   * The replica's secret: it proves the id is this replica's (re-registering, heartbeats,
   * unregister) and the gateway shows it to the replica's frame endpoint. Never listed.
   */
  secret?: string;
  /** True when the API server issued the secret (the registration brought none: the seed's shape). */
  secretIssued?: boolean;
  /**
   * What the replica reports: an operator drained it (management API → the replica, which tells
   * every API server it registers with). Absent: the registry keeps what it had for the id.
   */
  draining?: boolean;
  /** When `draining` was decided (the replica's `drain_seq`): an older one does not override it. */
  drainSeq?: number;
}

/** One replica as the registry holds it. Mutable counters are owned by the gateway. */
export interface ReplicaEntry extends ReplicaRegistration {
  registeredAt: number;
  lastHeartbeat: number;
  /** Requests the gateway has sent and not yet had answered. */
  inFlight: number;
  /**
   * When the replica last showed progress (ms epoch): an answer or a stream chunk arrived, a health
   * probe passed, or it went from idle to busy. With requests in flight and no progress for the
   * gateway's stall time, it is passed over while others can serve (a stopped or wedged process).
   */
  progressAt: number;
  /** False while draining: matched but not chosen. */
  available: boolean;
  /**
   * The gateway's health probes (gateway/health-checker.ts): false after 3 failed probes in a row
   * until one passes. Kept across a re-registration from the same endpoint.
   */
  healthy: boolean;
  /** Failed health probes in a row. */
  probeFailures: number;
  /** Why the last probe failed, for /registry. */
  probeError?: string | undefined;
  /** What the replica reported with its last health probe answer (queue, workers, CPU, memory). */
  load?: ReplicaLoad | undefined;
  /**
   * The most `inFlight` reached while the probe that brought `load` was out: the replica's requests
   * beyond it are ones this API server did not send (direct clients, other API servers), which the
   * autoscaler adds to `inFlight` now. The peak, not the count when the answer came: requests
   * answered between the replica's count and the answer's arrival would otherwise show as
   * requests from elsewhere (a stale report counted twice — more replicas than the load needs).
   */
  loadInFlight?: number | undefined;
  /** The most `inFlight` since the running load probe was sent (see {@link countSent}). */
  inFlightPeak: number;
  /** Registration order, so lookups return replicas in a stable order without a full scan. */
  order: number;
}

/** A request sent to `entry` and not yet answered: its `inFlight` and the probe window's peak. */
export function countSent(entry: ReplicaEntry): void {
  if (++entry.inFlight > entry.inFlightPeak) entry.inFlightPeak = entry.inFlight;
}

/** A query's matches: its canonical key (`type=chat,model=x`) and the replicas. */
export interface Route {
  readonly key: string;
  readonly replicas: ReplicaEntry[];
  /** The query as JSON bytes, for the frames' call meta: every query with this key is the same map. */
  readonly queryBytes: Buffer;
}

/**
 * The least silence after which a replica is removed, whatever its heartbeat interval: an event
 * loop busy for a second (a replica starting workers, a loaded machine) is not a dead replica, as
 * a health probe gets at least a second to answer.
 */
export const EXPIRY_FLOOR_MS = 3_000;

/**
 * Queries whose candidates are cached. Matched queries are bounded by what is registered (subsets of
 * registered capabilities), but a capability with many keys has many subsets: the bound holds
 * whatever is registered.
 */
export const MAX_CACHED_ROUTES = 4096;

/** Registered capabilities a "no match" message names before "and N more". */
export const DESCRIBED_CAPABILITIES = 5;
/** Why a foreign replica is out of rotation before its first health probe. */
const NOT_PROBED = "not probed yet: a server that is not anyserve takes traffic once its first health probe passes";

type ChangeListener = (event: "register" | "unregister", entry: ReplicaEntry) => void;

export class Registry {
  readonly #replicas = new Map<string, ReplicaEntry>();
  /** "key=value" → replicas having at least one capability with that pair. */
  readonly #index = new Map<string, Set<ReplicaEntry>>();
  #cache = new Map<string, Route>();
  /** Who decides a replica's drain state and which report wins (drain-state.ts). */
  readonly #drains = new DrainStates();
  readonly #listeners: ChangeListener[] = [];
  /** Told of every change that can alter a routing decision (the route table's watchers). */
  readonly #routingListeners: (() => void)[] = [];
  readonly #now: () => number;
  #nextOrder = 0;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#replicas.size;
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  /** Called after any change that can alter routing: register, unregister, draining, health. */
  onRoutingChange(listener: () => void): void {
    this.#routingListeners.push(listener);
  }

  /** Adds a replica, or replaces the one with the same id (its capabilities are replaced). */
  register(given: ReplicaRegistration): ReplicaEntry {
    const previous = this.#replicas.get(given.replicaId);
    if (previous) this.#remove(previous);
    const now = this.#now();
    // The same process re-registering (a capability turned warm) keeps its probe results; a new
    // endpoint is a new process and starts healthy — an anyserve replica registers once it serves.
    // A foreign OIP server was registered by someone else, maybe before it was up: it takes
    // traffic once its first health probe passed.
    const same = previous !== undefined && targetOf(previous) === targetOf(given);
    const foreign = given.protocol !== undefined;
    // A drain state older than the one held (sent before a change, arriving after it) is not taken.
    const reg = this.#drains.admit(given, previous);
    const entry: ReplicaEntry = {
      ...reg,
      registeredAt: previous?.registeredAt ?? now,
      lastHeartbeat: now,
      inFlight: previous?.inFlight ?? 0,
      inFlightPeak: previous?.inFlightPeak ?? 0,
      progressAt: previous?.progressAt ?? now,
      available: this.#drains.inRotation(reg),
      healthy: same ? previous.healthy : !foreign,
      probeFailures: same ? previous.probeFailures : 0,
      probeError: same ? previous.probeError : foreign ? NOT_PROBED : undefined,
      load: same ? previous.load : undefined,
      order: previous?.order ?? this.#nextOrder++,
    };
    this.#replicas.set(entry.replicaId, entry);
    for (const pair of pairsOf(entry)) {
      let set = this.#index.get(pair);
      if (!set) this.#index.set(pair, (set = new Set()));
      set.add(entry);
    }
    this.#changed("register", entry);
    return entry;
  }

  /** Removes a replica; false when the id is unknown. */
  unregister(replicaId: string): boolean {
    const entry = this.#replicas.get(replicaId);
    if (!entry) return false;
    this.#remove(entry);
    this.#changed("unregister", entry);
    return true;
  }

  get(replicaId: string): ReplicaEntry | undefined {
    return this.#replicas.get(replicaId);
  }

  /** Records a heartbeat; throws REPLICA_NOT_FOUND so the replica knows to register again. */
  heartbeat(
    replicaId: string,
    update: { capabilities?: RegisteredCapability[]; draining?: boolean; drainSeq?: number } = {},
  ): ReplicaEntry {
    const entry = this.#replicas.get(replicaId);
    if (!entry) throw new AnyServeError("REPLICA_NOT_FOUND", `replica '${replicaId}' is not registered`);
    entry.lastHeartbeat = this.#now();
    if (update.draining !== undefined && this.#drains.report(entry, update.draining, update.drainSeq)) {
      this.setAvailable(replicaId, !update.draining);
    }
    if (update.capabilities && statesDiffer(entry.capabilities, update.capabilities)) {
      return this.register({ ...entry, capabilities: update.capabilities });
    }
    return entry;
  }

  /** Marks a replica (un)available without removing it (draining, health). */
  setAvailable(replicaId: string, available: boolean): boolean {
    const entry = this.#replicas.get(replicaId);
    if (!entry) return false;
    if (entry.available !== available) {
      entry.available = available;
      this.#routingChanged();
    }
    return true;
  }

  /**
   * Takes a replica out of rotation (or puts it back) until told otherwise; false when unknown.
   * `drainSeq`: the replica carries the state and answered with when it changed (its `drain_seq`),
   * so a heartbeat it sent before the change cannot undo it here.
   */
  drain(replicaId: string, drained: boolean, drainSeq?: number): boolean {
    // A stale decision is not taken; the id is known, so still true.
    if (!this.#drains.decide(replicaId, this.#replicas.get(replicaId), drained, drainSeq)) return true;
    return this.setAvailable(replicaId, !drained);
  }

  /** Marks a replica (un)healthy (the health checker); false when the id is unknown. */
  setHealthy(replicaId: string, healthy: boolean): boolean {
    const entry = this.#replicas.get(replicaId);
    if (!entry) return false;
    if (entry.healthy !== healthy) {
      entry.healthy = healthy;
      this.#routingChanged();
    }
    return true;
  }

  /**
   * Removes replicas silent for more than 3 of their heartbeat intervals, and at least
   * {@link EXPIRY_FLOOR_MS} (a short interval must not turn a busy second into a removal); returns
   * their ids. A foreign OIP server ({@link ForeignProtocol}) cannot heartbeat: it stays until
   * unregistered, and the health checker decides whether it gets traffic.
   */
  expire(): string[] {
    const now = this.#now();
    const gone: string[] = [];
    for (const entry of this.#replicas.values()) {
      if (entry.protocol === undefined && now - entry.lastHeartbeat > Math.max(3 * entry.heartbeatIntervalMs, EXPIRY_FLOOR_MS))
        gone.push(entry.replicaId);
    }
    for (const id of gone) this.unregister(id);
    return gone;
  }

  /**
   * Replicas with a capability matching `query`, in registration order, excluding the ids in
   * `exclude`. The result is cached until the registry changes; do not mutate it.
   */
  lookup(query: CapabilityMap, exclude?: ReadonlySet<string> | readonly string[]): ReplicaEntry[] {
    const all = this.route(query).replicas;
    if (!exclude || (Array.isArray(exclude) ? exclude.length === 0 : (exclude as ReadonlySet<string>).size === 0)) {
      return all;
    }
    const skip = exclude instanceof Set ? exclude : new Set(exclude as readonly string[]);
    return all.filter((e) => !skip.has(e.replicaId));
  }

  /** Like {@link lookup} but only replicas that can take requests (not draining, not unhealthy). */
  lookupAvailable(query: CapabilityMap, exclude?: ReadonlySet<string> | readonly string[]): ReplicaEntry[] {
    const found = this.lookup(query, exclude);
    return found.every(isRoutable) ? found : found.filter(isRoutable);
  }

  /** A random replica not in `exclude`, or undefined (the seed's delegation starting point). */
  random(exclude?: ReadonlySet<string>, rand: () => number = Math.random): ReplicaEntry | undefined {
    const pool = [...this.#replicas.values()].filter((e) => isRoutable(e) && !exclude?.has(e.replicaId));
    return pool.length === 0 ? undefined : pool[Math.floor(rand() * pool.length)];
  }

  list(): ReplicaEntry[] {
    return [...this.#replicas.values()];
  }

  /**
   * The first registered capabilities, readable, for "no match" messages: at most `limit` (any
   * client reads this message, so it is short), then how many more and where the whole list is.
   */
  describeCapabilities(limit = DESCRIBED_CAPABILITIES): string {
    const seen = new Set<string>();
    for (const e of this.#replicas.values()) {
      for (const c of e.capabilities) seen.add(formatCapability(c.capability));
    }
    if (seen.size === 0) return "nothing is registered";
    const list = [...seen];
    const more = list.length > limit ? ` and ${list.length - limit} more (GET /registry lists them all)` : "";
    return `registered: ${list.slice(0, limit).join(", ")}${more}`;
  }

  /**
   * The query's key and every replica matching it, in registration order (availability not
   * applied). Cached until the registry changes; do not mutate it.
   */
  route(query: CapabilityMap): Route {
    const key = capabilityKey(query);
    const cached = this.#cache.get(key);
    if (cached) return cached;
    const result: Route = { key, replicas: this.#scan(query), queryBytes: Buffer.from(JSON.stringify(query)) };
    // An unmatched query is not remembered: its scan stops at the first pair nobody has, and
    // remembering it would let distinct made-up values grow the cache without end.
    if (result.replicas.length === 0) return result;
    if (this.#cache.size >= MAX_CACHED_ROUTES) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, result);
    return result;
  }

  #scan(query: CapabilityMap): ReplicaEntry[] {
    const pairs = Object.keys(query).map((k) => `${k}=${query[k]}`);
    let smallest: Iterable<ReplicaEntry> | undefined;
    let size = Infinity;
    if (pairs.length === 0) {
      smallest = this.#replicas.values();
    } else {
      for (const pair of pairs) {
        const set = this.#index.get(pair);
        if (!set) return [];
        if (set.size < size) {
          size = set.size;
          smallest = set;
        }
      }
    }
    const found: ReplicaEntry[] = [];
    for (const entry of smallest!) {
      if (entry.capabilities.some((c) => matches(c.capability, query))) found.push(entry);
    }
    // Registration order keeps results stable (the seed's "first match" behaviour).
    return found.sort((a, b) => a.order - b.order);
  }

  #remove(entry: ReplicaEntry): void {
    this.#replicas.delete(entry.replicaId);
    for (const pair of pairsOf(entry)) {
      const set = this.#index.get(pair);
      set?.delete(entry);
      if (set?.size === 0) this.#index.delete(pair);
    }
  }

  #changed(event: "register" | "unregister", entry: ReplicaEntry): void {
    this.#cache = new Map();
    for (const listener of this.#listeners) listener(event, entry);
    for (const listener of this.#routingListeners) listener();
  }

  #routingChanged(): void {
    this.#cache = new Map();
    for (const listener of this.#routingListeners) listener();
  }
}

/**
 * Where the gateway sends a replica's calls: its frame (or OIP REST) URL, or an OIP gRPC server's
 * `grpc://host:port`. A registration with another target is another process.
 */
export function targetOf(r: ReplicaRegistration): string {
  return r.protocol === "oip-grpc" ? `grpc://${r.endpoint}` : (r.httpEndpoint ?? "");
}

/** Not draining and not marked unhealthy by the health checker. */
export function isRoutable(e: ReplicaEntry): boolean {
  return e.available && e.healthy;
}

function pairsOf(entry: ReplicaRegistration): Set<string> {
  const pairs = new Set<string>();
  for (const c of entry.capabilities) {
    for (const k in c.capability) pairs.add(`${k}=${c.capability[k]}`);
  }
  return pairs;
}

function statesDiffer(a: RegisteredCapability[], b: RegisteredCapability[]): boolean {
  if (a.length !== b.length) return true;
  return a.some((c, i) => c.state !== b[i]!.state || capabilityKey(c.capability) !== capabilityKey(b[i]!.capability));
}
