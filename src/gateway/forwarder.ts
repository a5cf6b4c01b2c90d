/**
 * The gateway's backend: picks a replica for the call's capability and forwards the body, as
 * bytes, over the replica's framed connection. It never parses a body it only forwards.
 */
import { AnyServeError, isErrorCode, type ErrorCode } from "../errors.js";
import type { IncomingCall, InferBackend, ModelMetadata } from "../frontend/backend.js";
import { formatCapability, matches, type CapabilityMap } from "../protocol/capability.js";
import type { EncodedBody } from "../protocol/types.js";
import { FrameClient, type FrameReply } from "../transport/frame-client.js";
import type { Balancer } from "./balancers/base.js";
import type { Registry, ReplicaEntry } from "./registry.js";
import { toFrameMeta, type FrameKind } from "../transport/call-meta.js";

export interface ForwarderOptions {
  registry: Registry;
  balancer: Balancer;
  /** What to do when nothing matches: answer 404, or pick a random replica to start delegation (seed scenario 2). */
  unmatched: "error" | "delegate";
  maxDelegationDepth: number;
  /** Bearer token the replicas' frame endpoints require, if any. */
  token?: string | undefined;
}

/** The longest a retired replica connection is kept for its in-flight requests. */
const RETIRE_MAX_MS = 10 * 60_000;

export class Forwarder implements InferBackend {
  readonly #o: ForwarderOptions;
  readonly #clients = new Map<string, FrameClient>();
  /** Clients of replicas that left, kept until their in-flight requests are answered. */
  readonly #retired = new Set<FrameClient>();
  #draining = false;

  constructor(options: ForwarderOptions) {
    this.#o = options;
    options.registry.onChange((event, entry) => {
      // A replica that left (or re-registered elsewhere) gets no new requests on its old
      // connection; the ones in flight finish (a draining replica unregisters before it drains).
      const client = this.#clients.get(entry.replicaId);
      if (client && (event === "unregister" || client.url !== entry.httpEndpoint)) {
        this.#clients.delete(entry.replicaId);
        this.#retire(client);
      }
    });
  }

  ready(): boolean {
    return !this.#draining;
  }

  async infer(call: IncomingCall): Promise<EncodedBody> {
    const reply = await this.#send(call, "infer");
    return encodedOf(reply);
  }

  async stream(call: IncomingCall, onChunk: (chunk: EncodedBody) => void): Promise<void> {
    const contentType = call.format === "protobuf" ? "application/x-protobuf" : "application/json";
    await this.#send(call, "stream", (_meta, body) => onChunk({ body, contentType }));
  }

  async modelMetadata(query: CapabilityMap, name: string, version?: string): Promise<ModelMetadata> {
    const entry = this.#choose(query, { model: { name, version } } as IncomingCall);
    const reply = await this.#client(entry).request({ k: "meta", q: query, m: { name, version } }, Buffer.alloc(0), { timeoutMs: 10_000 });
    throwIfError(reply, entry);
    return JSON.parse(reply.body.toString("utf8")) as ModelMetadata;
  }

  async modelReady(query: CapabilityMap): Promise<boolean> {
    return this.#o.registry.lookupAvailable(query).length > 0;
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

  /** Closes a client once its last in-flight request is answered (or after RETIRE_MAX_MS). */
  #retire(client: FrameClient): void {
    if (client.inFlight === 0) {
      void client.close();
      return;
    }
    this.#retired.add(client);
    setTimeout(() => {
      if (this.#retired.delete(client)) void client.close();
    }, RETIRE_MAX_MS).unref();
  }

  async #send(call: IncomingCall, kind: FrameKind, onChunk?: (meta: Record<string, unknown> | null, body: Buffer) => void): Promise<FrameReply> {
    const entry = this.#choose(call.query, call);
    const client = this.#client(entry);
    entry.inFlight++;
    try {
      const reply = await client.request(toFrameMeta(call, kind), call.body, {
        timeoutMs: call.timeoutMs,
        signal: call.signal,
        ...(onChunk ? { onChunk } : {}),
      });
      throwIfError(reply, entry);
      return reply;
    } finally {
      entry.inFlight--;
      if (client.inFlight === 0 && this.#retired.delete(client)) void client.close();
    }
  }

  #choose(query: CapabilityMap, call: IncomingCall): ReplicaEntry {
    const { registry } = this.#o;
    const depth = call.depth ?? 0;
    const tried = call.tried ?? [];
    if (depth > this.#o.maxDelegationDepth) throw this.#exhausted(query, tried);
    const candidates = registry.lookup(query, tried);
    if (candidates.length === 0) return this.#unmatched(query, call, tried);
    const available = candidates.every((e) => e.available) ? candidates : candidates.filter((e) => e.available);
    if (available.length === 0) {
      throw new AnyServeError("NO_READY_REPLICA", `${candidates.length} replica(s) match ${formatCapability(query)} but none is ready (all draining or unhealthy)`);
    }
    return this.#o.balancer.pick(preferWarm(available, query));
  }

  #unmatched(query: CapabilityMap, call: IncomingCall, tried: string[]): ReplicaEntry {
    const { registry } = this.#o;
    if (tried.length > 0 && registry.lookup(query).length > 0) throw this.#exhausted(query, tried);
    if (this.#o.unmatched === "delegate" && (call.depth ?? 0) < this.#o.maxDelegationDepth) {
      const pick = registry.random(new Set(tried));
      if (pick) return pick;
    }
    if (tried.length > 0) throw this.#exhausted(query, tried);
    if (call.model) {
      const what = call.model.version === undefined ? `model '${call.model.name}'` : `model '${call.model.name}' version '${call.model.version}'`;
      throw new AnyServeError("MODEL_NOT_FOUND", `${what} is not served by any replica; ${registry.describeCapabilities()}`);
    }
    throw new AnyServeError("NO_MATCHING_CAPABILITY", `no replica offers ${formatCapability(query)}; ${registry.describeCapabilities()}`);
  }

  #exhausted(query: CapabilityMap, tried: string[]): AnyServeError {
    return new AnyServeError(
      "DELEGATION_EXHAUSTED",
      `no replica could serve ${formatCapability(query)} within ${this.#o.maxDelegationDepth} delegation hop(s); tried ${tried.join(", ") || "none"}`,
      { tried },
    );
  }

  #client(entry: ReplicaEntry): FrameClient {
    let client = this.#clients.get(entry.replicaId);
    if (!client) {
      if (!entry.httpEndpoint) throw new AnyServeError("REPLICA_UNREACHABLE", `replica '${entry.replicaId}' registered no http_endpoint to forward to`);
      client = new FrameClient({ url: entry.httpEndpoint, ...(this.#o.token ? { token: this.#o.token } : {}) });
      this.#clients.set(entry.replicaId, client);
    }
    return client;
  }
}

const allWarmCache = new WeakMap<ReplicaEntry, boolean>();

/** Entries are replaced, never mutated, when their states change, so this is cached per entry. */
function allWarm(e: ReplicaEntry): boolean {
  let v = allWarmCache.get(e);
  if (v === undefined) allWarmCache.set(e, (v = e.capabilities.every((c) => c.state === "warm")));
  return v;
}

/**
 * Warm replicas first: a cold (lazy) capability makes its first request wait for workers to
 * start. Cold ones are used when no warm one matches; failed ones only when nothing else does
 * (they answer CAPABILITY_FAILED with the reason).
 */
function preferWarm(entries: ReplicaEntry[], query: CapabilityMap): ReplicaEntry[] {
  if (entries.every(allWarm)) return entries;
  const warm: ReplicaEntry[] = [];
  const cold: ReplicaEntry[] = [];
  for (const e of entries) {
    let best: string | undefined;
    for (const c of e.capabilities) {
      if (!matches(c.capability, query)) continue;
      if (c.state === "warm") { best = "warm"; break; }
      if (c.state === "cold") best = "cold";
    }
    if (best === "warm") warm.push(e);
    else if (best === "cold") cold.push(e);
  }
  return warm.length > 0 ? warm : cold.length > 0 ? cold : entries;
}

function encodedOf(reply: FrameReply): EncodedBody {
  const meta = reply.meta;
  const out: EncodedBody = { body: reply.body, contentType: typeof meta.ct === "string" ? meta.ct : "application/json" };
  if (typeof meta.hl === "number") out.headerLength = meta.hl;
  return out;
}

/** A reply carrying an error code is rebuilt into the same error the replica raised. */
function throwIfError(reply: FrameReply, entry: ReplicaEntry): void {
  const code = reply.meta.code;
  if (code === undefined) return;
  const message = typeof reply.meta.error === "string" ? reply.meta.error : `replica '${entry.replicaId}' failed`;
  throw new AnyServeError(isErrorCode(code) ? (code as ErrorCode) : "INTERNAL", message);
}
