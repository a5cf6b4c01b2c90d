/**
 * The gateway's backend: picks a replica for the call's capability and forwards the body, as
 * bytes, over the replica's framed connection. It never parses a body it only forwards. A replica
 * that is not anyserve but an OIP v2 server is reached over OIP gRPC or REST instead (one
 * transport per replica kind: transports/).
 *
 * Choosing is two steps: availability first — not draining, not unhealthy (health
 * checker), not ejected (outlier detector), circuit not open for this capability — then the
 * service's balancing strategy among what is left. With failover on, an attempt that was not
 * delivered or got a retryable error goes to another replica, within a retry budget.
 */
import { AnyServeError, type ErrorCode } from "../errors.js";
import { type ChunkSink, describeModel, type IncomingCall, type InferBackend, type ModelMetadata } from "../protocol/call.js";
import { formatCapability, modelTypeFallback, type CapabilityMap } from "../protocol/capability.js";
import type { EncodedBody } from "../protocol/types.js";
import type { FrameReply } from "../transport/frame-client.js";
import { answerError, answerOf, type FrameKind } from "../transport/call-meta.js";
import { retireClient } from "../transport/retire.js";
import { describeUnavailable, preferWarm } from "../routing/candidates.js";
import type { ServicePolicies, ServicePolicy } from "./policies.js";
import { countSent, isRoutable, targetOf, type Registry, type ReplicaEntry, type Route } from "../routing/registry.js";
import { CircuitBreakers, type CircuitBreakerOptions } from "./resilience/circuit-breaker.js";
import { OutlierDetector, type OutlierDetectorOptions } from "./resilience/outlier-detector.js";
import { canRetryElsewhere, isCircuitFailure, isReplicaFault } from "../routing/outcome.js";
import { RetryBudget, type RetryBudgetOptions } from "./resilience/retry-budget.js";
import { FramesTransport, type ChunkSink as FrameChunkSink, type ReplicaTransport, type Target } from "./transports/transport.js";
import { OipGrpcTransport } from "./transports/oip-grpc.js";
import { OipRestTransport } from "./transports/oip-rest.js";
import type { ColdStarts } from "./cold-start.js";
import { Cancellation } from "../util/cancel.js";

export interface ForwarderOptions {
  registry: Registry;
  /** Balancing strategy and failover per service. */
  policies: ServicePolicies;
  /** What to do when nothing matches: answer 404, or pick a random replica to start delegation (seed scenario 2). */
  unmatched: "error" | "delegate";
  maxDelegationDepth: number;
  /** CA bundle trusted for replicas that serve TLS (`https://` endpoints), besides the system's. */
  tlsCa?: Buffer | undefined;
  /** Outlier ejection, circuit breakers, retry budget (defaults: Envoy's, Moleculer's, Finagle's). */
  resilience?: ResilienceOptions;
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

/** The default of {@link ForwarderOptions.stallMs} for an API server (`api_server.stall_timeout`; a test checks they agree). */
export const DEFAULT_STALL_MS = 5_000;
/** An API server's default warm-up (`api_server.warmup`; a test checks they agree). */
export const DEFAULT_WARMUP_MS = 15_000;

export interface ResilienceOptions {
  outlier?: OutlierDetectorOptions;
  circuit?: CircuitBreakerOptions;
  retryBudget?: RetryBudgetOptions;
  /** Retries of one request on other replicas (failover); default 2. */
  maxRetries?: number;
}

/** One routing decision: the replica, and the query its route matched (a model route's may be `type=m`). */
interface Pick extends Target {
  policy: ServicePolicy;
  route: Route;
}

/** Hears of every answered request: its service ("" when none matched), capability key, outcome code and seconds. */
export interface RequestObserver {
  observe(service: string, capability: string, code: string, seconds: number): void;
}

/** Which replica (and service) the call went to last, for the observer. */
interface Trace {
  pick: Pick | undefined;
}

/** Thrown by #choose when failover has excluded every candidate: #send rethrows its last failure. */
const NO_OTHER_REPLICA = Symbol("no other replica");

/** Thrown by #choose when nothing serves the call but a service scaled to zero would: the call waits for it. */
class ColdService {
  constructor(readonly service: string) {}
}

export class Forwarder implements InferBackend {
  readonly #o: ForwarderOptions;
  readonly #clients = new Map<string, ReplicaTransport>();
  /** Clients of replicas that left, kept until their in-flight requests are answered. */
  readonly #retired = new Set<ReplicaTransport>();
  readonly outliers: OutlierDetector;
  readonly circuits: CircuitBreakers;
  /** Each registered replica's instance (target and secret) as last registered: a change is a new process. */
  readonly #instances = new Map<string, string>();
  readonly retryBudget: RetryBudget;
  readonly #maxRetries: number;
  readonly #stallMs: number;
  /** Until when (ms epoch) "nothing matches" means "not registered yet". */
  #warmUntil: number;
  /** Failover counters, for /registry and metrics. */
  readonly counters = { retries: 0, retries_denied: 0, ejections: 0, delegated: 0 };
  /** Told about every answered request (the API server's metrics), unless the service turned metrics off. */
  observer: RequestObserver | undefined;
  /** Services scaled to zero: a call only they would serve waits for their first replica (gateway/cold-start.ts). */
  coldStarts: ColdStarts | undefined;
  #draining = false;

  constructor(options: ForwarderOptions) {
    this.#o = options;
    const r = options.resilience ?? {};
    this.outliers = new OutlierDetector(r.outlier);
    this.circuits = new CircuitBreakers(r.circuit);
    this.retryBudget = new RetryBudget(r.retryBudget);
    this.#maxRetries = r.maxRetries ?? 2;
    this.#stallMs = options.stallMs ?? DEFAULT_STALL_MS;
    this.#warmUntil = Date.now() + (options.warmupMs ?? 0);
    for (const e of options.registry.list()) this.#instances.set(e.replicaId, instanceOf(e));
    options.registry.onChange((event, entry) => {
      // A replica that left (or re-registered elsewhere) gets no new requests on its old
      // connection; the ones in flight finish (a draining replica unregisters before it drains).
      const client = this.#clients.get(entry.replicaId);
      // A new endpoint or a new secret is a new process (or another one) under this id.
      const moved = client !== undefined && (client.target !== targetOf(entry) || client.credential !== entry.secret);
      if (client && (event === "unregister" || moved)) {
        this.#clients.delete(entry.replicaId);
        this.#retire(client);
      }
      // A new process under this id (or none) starts with a clean record. Judged by the instance
      // seen at the last registration, not by the client: after an unregister there is no client,
      // and failures of requests still in flight to the dead process are recorded after it — its
      // replacement must not inherit that ejection (seen: 23 s out of rotation after a restart).
      const instance = instanceOf(entry);
      const fresh = event === "unregister" || this.#instances.get(entry.replicaId) !== instance;
      if (event === "unregister") this.#instances.delete(entry.replicaId);
      else this.#instances.set(entry.replicaId, instance);
      if (fresh) {
        this.outliers.forget(entry.replicaId);
        this.circuits.forget(entry.replicaId);
      }
    });
  }

  ready(): boolean {
    return !this.#draining;
  }

  /** Ends the warm-up now (`up` does once its deployment is applied: everything expected has registered). */
  endWarmup(): void {
    this.#warmUntil = 0;
  }

  /** Milliseconds of warm-up left (0 once over). */
  get warmupLeftMs(): number {
    return this.#warmUntil === 0 ? 0 : Math.max(0, this.#warmUntil - Date.now());
  }

  infer(call: IncomingCall): Promise<EncodedBody> {
    return this.#send(call, "infer").then(answerOf);
  }

  /** Chunks wait for `onChunk`'s promise before their bytes are granted back to the replica (frame credit). */
  async stream(call: IncomingCall, onChunk: ChunkSink): Promise<void> {
    const contentType = call.format === "protobuf" ? "application/x-protobuf" : "application/json";
    await this.#send(call, "stream", (_meta, body) => onChunk({ body, contentType }));
  }

  modelMetadata(query: CapabilityMap, name: string, version?: string): Promise<ModelMetadata> {
    // A metadata request has no deadline of its own: it waits for a cold model's replica at most this long.
    const call = { query, model: { name, version }, timeoutMs: 30_000, signal: new Cancellation() } as unknown as IncomingCall;
    try {
      const pick = this.#choose(call, undefined);
      return this.#client(pick.entry).metadata(pick, name, version);
    } catch (err) {
      if (err instanceof ColdService) return this.#waitCold(err, call).then(() => this.modelMetadata(query, name, version));
      return Promise.reject(err);
    }
  }

  async modelReady(query: CapabilityMap): Promise<boolean> {
    return this.#o.registry.lookupAvailable(this.#modelQuery(query)).length > 0;
  }

  /** The query a model route is served with: `model=m`, or `type=m` when no replica has `model=m` ({@link modelTypeFallback}). */
  #modelQuery(query: CapabilityMap): CapabilityMap {
    if (this.#o.registry.route(query).replicas.length > 0) return query;
    return modelTypeFallback(query) ?? query;
  }

  /**
   * One readiness probe of a replica (the health checker's): over its framed connection, or a
   * foreign server's OIP health routes; resolves with what it reported.
   */
  probe(entry: ReplicaEntry, timeoutMs: number): Promise<Record<string, unknown>> {
    try {
      return this.#client(entry).probe(entry, timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** In-flight requests across replicas, for draining. */
  get inFlight(): number {
    let n = 0;
    for (const e of this.#o.registry.list()) n += e.inFlight;
    return n;
  }

  async close(): Promise<void> {
    this.#draining = true;
    const clients = [...this.#clients.values(), ...this.#retired];
    this.#clients.clear();
    this.#retired.clear();
    await Promise.all(clients.map((c) => c.close()));
  }

  /** Closes a client once its last in-flight request is answered (or after 10 minutes). */
  #retire(client: ReplicaTransport): void {
    retireClient(client, this.#retired);
  }

  /** Waits for a replica of a service scaled to zero; resolves with the call and the time it has left. */
  async #waitCold(cold: ColdService, call: IncomingCall): Promise<IncomingCall> {
    const t0 = Date.now();
    await this.coldStarts!.wait(cold.service, call.query, call.timeoutMs, call.signal);
    return { ...call, timeoutMs: Math.max(1, call.timeoutMs - (Date.now() - t0)) };
  }

  /**
   * Sends the call to a chosen replica. With failover on, an attempt that was not delivered or got
   * a retryable error is sent again to another replica, within the retry budget and the call's
   * deadline, and never after part of the answer went out.
   */
  #send(call: IncomingCall, kind: FrameKind, onChunk?: FrameChunkSink): Promise<FrameReply> {
    if (call.depth !== undefined && call.depth > 0) this.counters.delegated++;
    const observer = this.observer;
    if (observer === undefined) return this.#deliver(call, kind, onChunk, undefined);
    const t0 = performance.now();
    const trace: Trace = { pick: undefined };
    const observe = (code: string): void => {
      const pick = trace.pick;
      if (pick === undefined || pick.policy.metrics) {
        // A query nothing matched (answered 404, or delegated to a random replica) is counted as
        // "unmatched": its own key would give every made-up capability value a series.
        const matched = pick !== undefined && pick.route.replicas.length > 0;
        observer.observe(
          matched ? (pick.entry.service ?? "") : "",
          matched ? pick.route.key : "unmatched",
          code,
          (performance.now() - t0) / 1000,
        );
      }
    };
    return this.#deliver(call, kind, onChunk, trace).then(
      (reply) => {
        observe("OK");
        return reply;
      },
      (err: unknown) => {
        observe(err instanceof AnyServeError ? err.code : "INTERNAL");
        throw err;
      },
    );
  }

  #deliver(call: IncomingCall, kind: FrameKind, onChunk: FrameChunkSink | undefined, trace: Trace | undefined): Promise<FrameReply> {
    this.retryBudget.recordRequest();
    let pick: Pick;
    try {
      pick = this.#choose(call, undefined);
    } catch (err) {
      // Its service is scaled to zero: the call waits for a replica, then goes on with the time left.
      if (err instanceof ColdService) return this.#waitCold(err, call).then((later) => this.#deliver(later, kind, onChunk, trace));
      return Promise.reject(err);
    }
    if (trace) trace.pick = pick;
    // Without failover (the common case) one attempt, without another async frame around it.
    if (!pick.policy.failover) return this.#attempt(pick, call, kind, onChunk, true) as Promise<FrameReply>;
    return this.#deliverWithFailover(pick, call, kind, onChunk, trace);
  }

  async #deliverWithFailover(
    first: Pick,
    call: IncomingCall,
    kind: FrameKind,
    onChunk: FrameChunkSink | undefined,
    trace: Trace | undefined,
  ): Promise<FrameReply> {
    let pick = first;
    const started = Date.now();
    let answered = false;
    const sink =
      onChunk &&
      ((meta: Record<string, unknown> | null, body: Buffer): void | Promise<void> => {
        answered = true;
        return onChunk(meta, body);
      });
    let attempt = call;
    let excluded: string[] | undefined;
    for (let retries = 0; ; retries++) {
      const out = await this.#attempt(pick, attempt, kind, sink);
      if (!(out instanceof AnyServeError)) return out;
      const remaining = call.timeoutMs - (Date.now() - started);
      if (retries >= this.#maxRetries || remaining <= 0 || !canRetryElsewhere(out, answered)) throw out;
      (excluded ??= []).push(pick.entry.replicaId);
      attempt = { ...call, timeoutMs: remaining };
      try {
        pick = this.#choose(attempt, excluded);
        if (trace) trace.pick = pick;
      } catch (err) {
        // Nobody else can take it: the client gets the failure that happened, not a routing error.
        if (err === NO_OTHER_REPLICA || err instanceof AnyServeError) throw out;
        throw err;
      }
      if (!this.retryBudget.tryRetry()) {
        this.counters.retries_denied++;
        throw out;
      }
      this.counters.retries++;
    }
  }

  /**
   * One attempt on one replica: its answer, or the failure (recorded against the replica) —
   * resolved with, or with `rejectOnFailure` thrown. Promise callbacks, not an async function:
   * this runs once per request.
   */
  #attempt(
    pick: Pick,
    call: IncomingCall,
    kind: FrameKind,
    onChunk: FrameChunkSink | undefined,
    rejectOnFailure = false,
  ): Promise<FrameReply | AnyServeError> {
    const { entry } = pick;
    let client: ReplicaTransport;
    let sent: Promise<FrameReply>;
    // Idle to busy starts the stall clock (an idle replica has nothing to be late with).
    if (entry.inFlight === 0) entry.progressAt = Date.now();
    const sink: FrameChunkSink | undefined =
      onChunk &&
      ((meta, body) => {
        entry.progressAt = Date.now();
        return onChunk(meta, body); // its promise holds the stream's credit (back-pressure)
      });
    try {
      client = this.#client(entry);
      sent = client.send(call, kind, pick, sink);
    } catch (err) {
      return Promise.reject(err);
    }
    countSent(entry);
    return sent.then(
      (reply) => {
        // The replica answered (an error too): it is making progress.
        entry.progressAt = Date.now();
        const failure = this.#settle(pick, client, errorOf(reply, entry));
        if (failure === undefined) return reply;
        if (rejectOnFailure) throw failure;
        return failure;
      },
      (err: unknown) => {
        const failure = this.#settle(pick, client, AnyServeError.from(err, "INTERNAL"))!;
        if (rejectOnFailure) throw failure;
        return failure;
      },
    );
  }

  /** Ends an attempt: the replica's in-flight count, a retired client's close, the outcome's record. */
  #settle(pick: Pick, client: ReplicaTransport, failure: AnyServeError | undefined): AnyServeError | undefined {
    const { entry, route } = pick;
    entry.inFlight--;
    if (client.inFlight === 0 && this.#retired.delete(client)) void client.close();
    if (failure === undefined) {
      this.outliers.onSuccess(entry.replicaId);
      if (route.replicas.length > 0) this.circuits.record(entry.replicaId, route.key, true);
      return undefined;
    }
    this.#recordFailure(entry, route, failure.code);
    return failure;
  }

  #recordFailure(entry: ReplicaEntry, route: Route, code: ErrorCode): void {
    if (code === "CANCELLED") return; // the caller left: says nothing about the replica
    // Circuits are per capability the replica serves; a delegated query it does not serve has none
    // (and its key, made up by the client, must not become one).
    if (route.replicas.length > 0) this.circuits.record(entry.replicaId, route.key, !isCircuitFailure(code));
    if (!isReplicaFault(code)) {
      this.outliers.onSuccess(entry.replicaId);
      return;
    }
    const peers = route.replicas.map((e) => e.replicaId);
    if (this.outliers.onFailure(entry.replicaId, peers)) this.counters.ejections++;
  }

  /**
   * Availability, then the strategy. `excluded` are replicas failover already tried for this call;
   * when they were the only candidates this throws NO_OTHER_REPLICA.
   */
  #choose(call: IncomingCall, excluded: readonly string[] | undefined): Pick {
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
    if (this.circuits.openCount > 0) this.circuits.allows(entry.replicaId, route.key);
    return { entry, policy, route, query, queryBytes: route.queryBytes };
  }

  /**
   * The replica a call for `query` would go to now (the seed's `GET /route`): the same
   * availability and strategy as a forwarded call, without taking a half-open circuit's trial.
   * Throws NO_MATCHING_CAPABILITY or NO_READY_REPLICA.
   */
  lookup(query: CapabilityMap): ReplicaEntry {
    const { registry } = this.#o;
    const route = registry.route(query);
    if (route.replicas.length === 0) throw this.#notFound({ query });
    const available = this.#available(route.replicas, route.key);
    if (available.length === 0) throw this.#notReady(route.replicas, query, route.key);
    return this.#o.policies.of(available[0]!).balancer.pick(preferWarm(available, query));
  }

  #notReady(candidates: ReplicaEntry[], query: CapabilityMap, key: string): AnyServeError {
    return new AnyServeError(
      "NO_READY_REPLICA",
      `${candidates.length} replica(s) match ${formatCapability(query)} but none is ready: ${describeUnavailable(candidates, this.outliers, this.circuits, key)}`,
    );
  }

  /**
   * Candidates that may take a request now; the same array when all may (the common case).
   * Stalled replicas (see {@link ForwarderOptions.stallMs}) are left out only while another can
   * serve: a stall is a guess (a long request looks the same), not a verdict like a failed probe.
   */
  #available(candidates: ReplicaEntry[], key: string): ReplicaEntry[] {
    const ejected = this.outliers.ejectedCount > 0;
    const open = this.circuits.openCount > 0;
    const stalled = this.#stalled(candidates);
    if (!ejected && !open && stalled === undefined && candidates.every(isRoutable)) return candidates;
    const ok = candidates.filter(
      (e) => isRoutable(e) && !(ejected && this.outliers.isEjected(e.replicaId)) && !(open && this.circuits.blocks(e.replicaId, key)),
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

  /** Whether a replica is stalled: requests in flight and no progress for the stall time (status API, and choosing). */
  isStalled(e: ReplicaEntry, now = Date.now()): boolean {
    return this.#stallMs > 0 && e.inFlight > 0 && now - e.progressAt > this.#stallMs;
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

  /** The replica's transport, made on first use: frames for anyserve, OIP gRPC or REST for a foreign server. */
  #client(entry: ReplicaEntry): ReplicaTransport {
    let client = this.#clients.get(entry.replicaId);
    if (!client) {
      if (entry.protocol === "oip-grpc") client = new OipGrpcTransport(entry);
      else if (!entry.httpEndpoint)
        throw new AnyServeError("REPLICA_UNREACHABLE", `replica '${entry.replicaId}' registered no http_endpoint to forward to`);
      else if (entry.protocol === "oip-rest") client = new OipRestTransport(entry);
      // The replica's own secret, never the control-plane token: an endpoint gets only what it registered with.
      else client = new FramesTransport(entry.httpEndpoint, entry.secret, this.#o.tlsCa);
      this.#clients.set(entry.replicaId, client);
    }
    return client;
  }
}

/** Which process a registration is: where it is reached and the secret it proves itself with. */
function instanceOf(entry: ReplicaEntry): string {
  return `${targetOf(entry)} ${entry.secret ?? ""}`;
}

/** The replica ids a delegated call names, for messages: a few, each cut short (they come from a header). */
function describeTried(tried: string[]): string {
  if (tried.length === 0) return "none";
  const shown = tried.slice(0, 5).map((id) => (id.length > 64 ? `${id.slice(0, 64)}…` : id));
  return tried.length > 5 ? `${shown.join(", ")} and ${tried.length - 5} more` : shown.join(", ");
}

/** A reply carrying an error code, rebuilt into the same error the replica raised. */
function errorOf(reply: FrameReply, entry: ReplicaEntry): AnyServeError | undefined {
  return answerError(reply.meta, entry.replicaId);
}
