/**
 * The gateway's backend: picks a replica for the call's capability and forwards the body, as
 * bytes, over the replica's framed connection. It never parses a body it only forwards. A replica
 * that is not anyserve but an OIP v2 server is reached over OIP gRPC or REST instead (one
 * transport per replica kind: transports/).
 *
 * Three parts beside it, each its own file: replica-picker.ts chooses the replica (availability,
 * then the service's balancing strategy), replica-outcomes.ts records each answered attempt per
 * replica instance (outlier ejection, circuit breakers), replica-clients.ts keeps one transport per
 * replica (made on first use, retired when the replica leaves or moves). This file sends: one
 * attempt, or with failover on, another replica for an attempt that was not delivered or got a
 * retryable error, within a retry budget and the call's deadline.
 */
import { AnyServeError } from "../errors.js";
import type { ChunkSink, IncomingCall, InferBackend, ModelMetadata } from "../protocol/call.js";
import type { CapabilityMap } from "../protocol/capability.js";
import type { EncodedBody } from "../protocol/types.js";
import type { FrameReply } from "../transport/frame-client.js";
import { answerError, answerOf, type FrameKind } from "../transport/call-meta.js";
import { countSent, type ReplicaEntry } from "../routing/registry.js";
import type { CircuitBreakerOptions, CircuitBreakers } from "./resilience/circuit-breaker.js";
import type { OutlierDetector, OutlierDetectorOptions } from "./resilience/outlier-detector.js";
import { canRetryElsewhere } from "../routing/outcome.js";
import { RetryBudget, type RetryBudgetOptions } from "./resilience/retry-budget.js";
import type { ChunkSink as FrameChunkSink, ReplicaTransport } from "./transports/transport.js";
import type { ColdStarts } from "./cold-start.js";
import { Cancellation } from "../util/cancel.js";
import { ReplicaClients } from "./replica-clients.js";
import { ReplicaOutcomes } from "./replica-outcomes.js";
import { ColdService, NO_OTHER_REPLICA, ReplicaPicker, type Pick, type PickerOptions } from "./replica-picker.js";

export { DEFAULT_STALL_MS } from "./replica-picker.js";

/** The picker's options (registry, policies, unmatched, delegation depth, stall time, warm-up), and: */
export interface ForwarderOptions extends PickerOptions {
  /** CA bundle trusted for replicas that serve TLS (`https://` endpoints), besides the system's. */
  tlsCa?: Buffer | undefined;
  /** Outlier ejection, circuit breakers, retry budget (defaults: Envoy's, Moleculer's, Finagle's). */
  resilience?: ResilienceOptions;
}

/** An API server's default warm-up (`api_server.warmup`; a test checks they agree). */
export const DEFAULT_WARMUP_MS = 15_000;

export interface ResilienceOptions {
  outlier?: OutlierDetectorOptions;
  circuit?: CircuitBreakerOptions;
  retryBudget?: RetryBudgetOptions;
  /** Retries of one request on other replicas (failover); default 2. */
  maxRetries?: number;
}

/** Hears of every answered request: its service ("" when none matched), capability key, outcome code and seconds. */
export interface RequestObserver {
  observe(service: string, capability: string, code: string, seconds: number): void;
}

/** Which replica (and service) the call went to last, for the observer. */
interface Trace {
  pick: Pick | undefined;
}

export class Forwarder implements InferBackend {
  readonly #o: ForwarderOptions;
  readonly #clients: ReplicaClients;
  readonly #outcomes: ReplicaOutcomes;
  readonly #picker: ReplicaPicker;
  readonly retryBudget: RetryBudget;
  readonly #maxRetries: number;
  /** Failover counters, for /registry and metrics. */
  readonly counters = { retries: 0, retries_denied: 0, ejections: 0, delegated: 0 };
  /** Told about every answered request (the API server's metrics), unless the service turned metrics off. */
  observer: RequestObserver | undefined;
  #draining = false;

  constructor(options: ForwarderOptions) {
    this.#o = options;
    const r = options.resilience ?? {};
    this.#clients = new ReplicaClients(options.tlsCa);
    this.#outcomes = new ReplicaOutcomes(r, this.counters, options.registry.list());
    this.#picker = new ReplicaPicker(options, this.#outcomes.outliers, this.#outcomes.circuits);
    this.retryBudget = new RetryBudget(r.retryBudget);
    this.#maxRetries = r.maxRetries ?? 2;
    options.registry.onChange((event, entry) => {
      this.#clients.track(event, entry);
      this.#outcomes.track(event, entry);
    });
  }

  /** Outlier ejection per replica (status API, metrics). */
  get outliers(): OutlierDetector {
    return this.#outcomes.outliers;
  }

  /** Circuit breakers per replica and capability (status API, metrics). */
  get circuits(): CircuitBreakers {
    return this.#outcomes.circuits;
  }

  /** Services scaled to zero: a call only they would serve waits for their first replica (gateway/cold-start.ts). */
  get coldStarts(): ColdStarts | undefined {
    return this.#picker.coldStarts;
  }

  set coldStarts(cold: ColdStarts | undefined) {
    this.#picker.coldStarts = cold;
  }

  ready(): boolean {
    return !this.#draining;
  }

  /** Ends the warm-up now (`up` does once its deployment is applied: everything expected has registered). */
  endWarmup(): void {
    this.#picker.endWarmup();
  }

  /** Milliseconds of warm-up left (0 once over). */
  get warmupLeftMs(): number {
    return this.#picker.warmupLeftMs;
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
      const pick = this.#picker.choose(call, undefined);
      return this.#clients.get(pick.entry).metadata(pick, name, version);
    } catch (err) {
      if (err instanceof ColdService) return this.#waitCold(err, call).then(() => this.modelMetadata(query, name, version));
      return Promise.reject(err);
    }
  }

  async modelReady(query: CapabilityMap): Promise<boolean> {
    return this.#o.registry.lookupAvailable(this.#picker.modelQuery(query)).length > 0;
  }

  /**
   * One readiness probe of a replica (the health checker's): over its framed connection, or a
   * foreign server's OIP health routes; resolves with what it reported.
   */
  probe(entry: ReplicaEntry, timeoutMs: number): Promise<Record<string, unknown>> {
    try {
      return this.#clients.get(entry).probe(entry, timeoutMs);
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
    await this.#clients.close();
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
      pick = this.#picker.choose(call, undefined);
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
        pick = this.#picker.choose(attempt, excluded);
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
      client = this.#clients.get(entry);
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
    this.#clients.answered(client);
    this.#outcomes.record(entry, route, failure);
    return failure;
  }

  /**
   * The replica a call for `query` would go to now (the seed's `GET /route`): the same
   * availability and strategy as a forwarded call, without taking a half-open circuit's trial.
   * Throws NO_MATCHING_CAPABILITY or NO_READY_REPLICA.
   */
  lookup(query: CapabilityMap): ReplicaEntry {
    return this.#picker.lookup(query);
  }

  /** Whether a replica is stalled: requests in flight and no progress for the stall time (status API). */
  isStalled(e: ReplicaEntry, now = Date.now()): boolean {
    return this.#picker.isStalled(e, now);
  }
}

/** A reply carrying an error code, rebuilt into the same error the replica raised. */
function errorOf(reply: FrameReply, entry: ReplicaEntry): AnyServeError | undefined {
  return answerError(reply.meta, entry.replicaId);
}
