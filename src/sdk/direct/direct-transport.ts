/**
 * The direct path (docs/routing.md): calls go straight to a replica's frame endpoint, chosen
 * from the API server's route table by this client, and through the API server when that cannot
 * be done safely. The replica gets the same request meta as from the gateway's forwarder
 * (`callMeta`), so it cannot tell the two apart.
 *
 * Through the API server (the REST transport) instead when
 * - the table is not loaded yet, nothing in it matches, or nothing that matches is available;
 * - the call carries delegation or capability headers (the gateway owns those rules);
 * - direct attempts failed in a way that says the replica did not run the call: the request was
 *   never sent (connect refused, upgrade refused after GOAWAY), or the replica answered a
 *   retryable error (QUEUE_FULL, SHUTTING_DOWN, CAPABILITY_FAILED…); and, only for services with
 *   failover on (handlers safe to run twice), a connection lost after sending but before any
 *   answer. Such a failure is first tried on another replica of the table, then the API server.
 * Never after part of a stream arrived, and only within the call's remaining time.
 */
import { AnyServeError } from "../../errors.js";
import type { IncomingCall } from "../../protocol/call.js";
import { newRequestId } from "../../util/http.js";
import { canRetryElsewhere } from "../../routing/outcome.js";
import { capabilityFromHeaders, capabilityToHeaders, type CapabilityMap } from "../../protocol/capability.js";
import type { InferRequest, InferResponse } from "../../protocol/types.js";
import { answerError, answerOf, callMeta, type FrameKind } from "../../transport/call-meta.js";
import { FrameClient, type FrameReply } from "../../transport/frame-client.js";
import { retireClient } from "../../transport/retire.js";
import { peerKeyOf } from "../../util/auth.js";
import type { ClientTransport, InferOptions } from "../client.js";
import { decodeAnswer, encodeCall } from "../wire.js";
import { RouteCache, type DirectRoute, type RouteCacheState } from "./route-cache.js";
import { Gate } from "../../util/gate.js";
import type { ApiServers } from "../../util/api-servers.js";

export interface DirectTransportOptions {
  /** The API servers, and which one is in use: the route table is watched there (util/api-servers.ts). */
  apiServers: ApiServers;
  /** The API server's read or control-plane token, for the route table (a control token also yields the peer key). */
  token?: string | undefined;
  /** The inference token, when the deployment has one: shown to replicas' frame endpoints. */
  inferenceToken?: string | undefined;
  /** CA bundle for replicas and an API server that serve TLS. */
  ca?: string | Buffer | undefined;
  /** The transport through the API server (the current one of `apiServers`). */
  fallback: ClientTransport;
}

type CallOptions = InferOptions & { timeout: number };

/** Chunks a direct stream holds for a consumer that reads slower than the replica streams; then the replica waits (frame credit). */
const DIRECT_STREAM_BUFFER = 16;
/** One direct attempt: the reply, or the failure and whether the replica answered it. */
type Outcome = { reply: FrameReply; error?: undefined } | { error: AnyServeError; answered: boolean };

/** One call's direct tries: the replicas tried, the call as sent, the time left. */
interface Attempts {
  query: CapabilityMap;
  req: InferRequest;
  o: CallOptions;
  started: number;
  timeout: number;
  tried?: string[];
  call?: IncomingCall;
}

/** Direct attempts per call (on different replicas) before it goes through the API server. */
const MAX_DIRECT_ATTEMPTS = 2;
/** A replica whose connection failed is not picked again for this long (unless the table moves it). */
const DOWN_MS = 2_000;
/** A replica that sent GOAWAY is draining: not picked until the table drops it, or this long. */
const GOAWAY_MS = 10_000;
const NEVER = new AbortController().signal;
/** An `X-Request-Id` the REST front end would keep (`requestIdOf`). */
const REQUEST_ID = /^[\w.-]{1,128}$/;

export class DirectTransport implements ClientTransport {
  readonly #fallback: ClientTransport;
  /** What replicas' frame endpoints are shown: the inference token, else the peer key — never the control-plane token. */
  readonly #frameToken: string | undefined;
  readonly #ca: string | Buffer | undefined;
  readonly #routes: RouteCache;
  readonly #clients = new Map<string, FrameClient>();
  /** Clients of replicas that left, closed when their last call is answered. */
  readonly #retired = new Set<FrameClient>();
  #closed = false;

  constructor(o: DirectTransportOptions) {
    this.#fallback = o.fallback;
    this.#frameToken = o.inferenceToken ?? (o.token ? peerKeyOf(o.token) : undefined);
    this.#ca = o.ca;
    this.#routes = new RouteCache({ apiServers: o.apiServers, token: o.token, ca: o.ca, onLeave: (id) => this.#retire(id) });
  }

  /** The route table as this client has it. */
  routes(): RouteCacheState {
    return this.#routes.state();
  }

  async infer(query: CapabilityMap, req: InferRequest, o: CallOptions): Promise<InferResponse> {
    const a: Attempts = { query, req, o, started: Date.now(), timeout: o.timeout };
    for (let route = this.#next(a); route !== undefined; route = this.#next(a)) {
      const out = await this.#attempt(route, a.call!, "infer", o.signal, undefined);
      if (out.error === undefined) {
        const answer = answerOf(out.reply);
        return decodeAnswer(answer.body, answer.contentType, answer.headerLength);
      }
      failed(a, out, route, false);
    }
    return this.#fallback.infer(query, req, { ...o, timeout: a.timeout });
  }

  async *stream(query: CapabilityMap, req: InferRequest, o: CallOptions): AsyncIterable<InferResponse> {
    const a: Attempts = { query, req, o, started: Date.now(), timeout: o.timeout };
    for (let route = this.#next(a); route !== undefined; route = this.#next(a)) {
      const out = yield* this.#streamAttempt(route, a.call!, o.signal);
      if (out.error === undefined) return;
      failed(a, out, route, out.received);
    }
    yield* this.#fallback.stream(query, req, { ...o, timeout: a.timeout });
  }

  isAlive(): Promise<boolean> {
    return this.#fallback.isAlive();
  }

  isModelReady(name: string, version?: string): Promise<boolean> {
    return this.#fallback.isModelReady(name, version);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#routes.close();
    const clients = [...this.#clients.values(), ...this.#retired];
    this.#clients.clear();
    this.#retired.clear();
    await Promise.all([...clients.map((c) => c.close()), this.#fallback.close()]);
  }

  /**
   * The replica for the call's next direct try (at most MAX_DIRECT_ATTEMPTS, each on another
   * replica), with `a.call` made for it; undefined: send it through the API server (also once
   * closed, where it fails as over REST).
   */
  #next(a: Attempts): DirectRoute | undefined {
    if (a.tried !== undefined && a.tried.length >= MAX_DIRECT_ATTEMPTS) return undefined;
    const route = this.#route(a.query, a.o, a.tried);
    if (route === undefined) return undefined;
    a.call = this.#call(a.call, route.query, a.req, a.o, a.timeout);
    (a.tried ??= []).push(route.entry.replicaId);
    return route;
  }

  #route(
    query: CapabilityMap,
    o: CallOptions,
    exclude: readonly string[] | undefined,
  ): (DirectRoute & { query: CapabilityMap }) | undefined {
    if (this.#closed) return undefined;
    let affinity: string | undefined;
    const headers = o.headers;
    if (headers !== undefined) {
      for (const name in headers) {
        const h = name.toLowerCase();
        if (h.startsWith("x-delegat") || h.startsWith("x-capability-")) return undefined;
        if (h === "x-anyserve-affinity") affinity = headers[name]!.slice(0, 256);
      }
    }
    const sent = asSentInHeaders(query);
    const route = this.#routes.pick(sent, affinity, exclude);
    return route && { ...route, query: sent };
  }

  /**
   * The call as the gateway's REST front end would have made it of the same request; a retry is
   * the same call (same bytes, same request id) with the time left.
   */
  #call(previous: IncomingCall | undefined, query: CapabilityMap, req: InferRequest, o: CallOptions, timeout: number): IncomingCall {
    if (previous !== undefined) return { ...previous, timeoutMs: timeoutMsOf(timeout) };
    const enc = encodeCall(req, o.binary);
    let requestId: string | undefined;
    for (const name in o.headers) if (name.toLowerCase() === "x-request-id") requestId = o.headers[name];
    return {
      query,
      body: enc.body,
      contentType: enc.contentType,
      headerLength: enc.headerLength,
      format: "json",
      timeoutMs: timeoutMsOf(timeout),
      requestId: requestId !== undefined && REQUEST_ID.test(requestId) ? requestId : newRequestId(),
      signal: NEVER,
    };
  }

  /** One direct stream: yields its chunks as they come; returns how it ended and whether any chunk came. */
  async *#streamAttempt(
    route: DirectRoute,
    call: IncomingCall,
    caller: AbortSignal | undefined,
  ): AsyncGenerator<InferResponse, Outcome & { received: boolean }> {
    const stop = new AbortController();
    const chunks: Buffer[] = [];
    let wake: (() => void) | undefined;
    /** A full buffer's waits settle once the consumer took a chunk: the replica gets its credit back then. */
    const room = new Gate();
    let out: Outcome | undefined;
    const push = (_meta: unknown, body: Buffer): void | Promise<void> => {
      chunks.push(body);
      wake?.();
      if (chunks.length < DIRECT_STREAM_BUFFER) return;
      return room.wait();
    };
    const signal = caller ? AbortSignal.any([caller, stop.signal]) : stop.signal;
    void this.#attempt(route, call, "stream", signal, push).then((r) => {
      out = r;
      wake?.();
    });
    let received = false;
    try {
      for (;;) {
        while (chunks.length > 0) {
          received = true;
          const chunk = chunks.shift()!;
          if (chunks.length < DIRECT_STREAM_BUFFER) room.open();
          yield decodeAnswer(chunk, "application/json", undefined);
        }
        if (out !== undefined) return { ...out, received };
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      if (out === undefined) stop.abort(); // the consumer stopped reading: cancel at the replica
      room.open();
    }
  }

  async #attempt(
    route: DirectRoute,
    call: IncomingCall,
    kind: FrameKind,
    signal: AbortSignal | undefined,
    onChunk: ((meta: unknown, body: Buffer) => void) | undefined,
  ): Promise<Outcome> {
    const { entry } = route;
    const id = entry.replicaId;
    const client = this.#client(id, entry.httpEndpoint);
    entry.inFlight++;
    try {
      const reply = await client.request(callMeta(call, kind), call.body, {
        timeoutMs: call.timeoutMs,
        ...(signal ? { signal } : {}),
        ...(onChunk ? { onChunk } : {}),
      });
      const error = answerError(reply.meta, id);
      return error === undefined ? { reply } : { error, answered: true };
    } catch (err) {
      const error = AnyServeError.from(err, "INTERNAL");
      if (notSent(error)) this.#routes.markDown(id, DOWN_MS);
      return { error, answered: false };
    } finally {
      entry.inFlight--;
      // A replica whose capabilities changed got a new entry, which took over our count.
      const live = this.#routes.get(id);
      if (live !== undefined && live !== entry && live.inFlight > 0) live.inFlight--;
      if (client.inFlight === 0 && this.#retired.delete(client)) void client.close();
    }
  }

  #client(replicaId: string, url: string): FrameClient {
    let client = this.#clients.get(replicaId);
    if (client !== undefined && client.url === url) return client;
    if (client !== undefined) this.#retire(replicaId);
    client = new FrameClient({
      url,
      unref: true,
      ...(this.#frameToken ? { token: this.#frameToken } : {}),
      ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
    });
    client.on("goaway", () => this.#routes.markDown(replicaId, GOAWAY_MS));
    this.#clients.set(replicaId, client);
    return client;
  }

  /** A replica left the table: no new calls on its client, which closes after its last one. */
  #retire(replicaId: string): void {
    const client = this.#clients.get(replicaId);
    if (client === undefined) return;
    this.#clients.delete(replicaId);
    retireClient(client, this.#retired);
  }
}

/** The request never left this process (connect or upgrade refused): the replica cannot have run it. */
function notSent(err: AnyServeError): boolean {
  return (err.data as { sent?: unknown } | undefined)?.sent === false;
}

/**
 * After a failed direct try: throws its error when the call may not be sent again — part of a
 * stream arrived, no time is left, or the replica may have run it — else sets the time left.
 */
function failed(a: Attempts, out: { error: AnyServeError; answered: boolean }, route: DirectRoute, received: boolean): void {
  a.timeout = a.o.timeout - (Date.now() - a.started);
  if (received || a.timeout <= 0 || !mayFallBack(out, route)) throw out.error;
}

/**
 * May the call go through the API server after this failed direct attempt? Only when the replica
 * cannot have run it — never sent, or answered a retryable error (those are raised before a
 * handler runs) — or, for a service with failover on, as the gateway would retry it. The caller
 * has checked that nothing of the answer arrived.
 */
function mayFallBack(out: { error: AnyServeError; answered: boolean }, route: DirectRoute): boolean {
  if (notSent(out.error)) return true;
  if (out.answered) return out.error.retryable;
  return route.failover && canRetryElsewhere(out.error, false);
}

/**
 * The query as the gateway reads it from `X-Capability-*` headers (names lowercased, `-` → `_`),
 * so a direct call matches what the same call through the gateway would.
 */
function asSentInHeaders(query: CapabilityMap): CapabilityMap {
  let plain = true;
  for (const key in query) if (/[A-Z-]/.test(key)) plain = false;
  if (plain) return query;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(capabilityToHeaders(query))) headers[name.toLowerCase()] = value;
  return capabilityFromHeaders(headers);
}

/** Whole milliseconds, at least 1; at most what a timer takes (the timer keeps the process alive while the call runs). */
function timeoutMsOf(timeout: number): number {
  return Math.min(2 ** 31 - 1, Math.max(1, Math.round(timeout)));
}
