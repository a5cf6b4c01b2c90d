/**
 * How the forwarder reaches one replica: one transport per replica kind, behind one interface.
 *
 * | replica registered with | transport | wire |
 * |---|---|---|
 * | an `http_endpoint` (anyserve) | {@link FramesTransport} | id-tagged frames on 2 upgraded sockets (transport/) |
 * | `protocol: oip-grpc`, or no `http_endpoint` (the seed's body) | `OipGrpcTransport` (oip-grpc.ts) | OIP v2 gRPC on one grpc-js channel |
 * | `protocol: oip-rest` | `OipRestTransport` (oip-rest.ts) | OIP v2 REST on an undici pool |
 *
 * Every transport answers a call as a {@link FrameReply} whose body is already in the caller's wire
 * format (`meta.ct`, `meta.hl` as the frames carry them), or fails with an AnyServeError from the
 * catalogue — so failover, outlier ejection, circuits and metrics treat every kind alike.
 */
import type { IncomingCall, ModelMetadata } from "../../protocol/call.js";
import type { CapabilityMap } from "../../protocol/capability.js";
import { FrameClient, type FrameReply } from "../../transport/frame-client.js";
import { answerError, callMeta, type FrameKind } from "../../transport/call-meta.js";
import type { ReplicaEntry } from "../../routing/registry.js";

/**
 * Called for each streamed answer, in order: its meta (`ct`, `hl`) and body in the caller's format.
 * A promise back means the consumer is full: the frames transport grants the bytes back to the
 * replica (frame credit) only once it settles; the foreign transports do not wait on it yet.
 */
export type ChunkSink = (meta: Record<string, unknown> | null, body: Buffer) => void | Promise<void>;

/** What an attempt needs beyond the call: the replica, and the query its route matched (for a foreign model's name). */
export interface Target {
  entry: ReplicaEntry;
  query: CapabilityMap;
  /** The query as JSON bytes (the route's), for the frames' call meta. */
  queryBytes: Buffer;
}

export interface ReplicaTransport {
  /** Where it sends: a registration with another target is another process (`targetOf`). */
  readonly target: string;
  /** The replica's secret it authenticates with (frames); a registration with another secret is another process. */
  readonly credential?: string | undefined;
  /** Calls sent and not yet answered. */
  readonly inFlight: number;
  /** One call; a stream when `onChunk` is given (resolves after the last chunk). */
  send(call: IncomingCall, kind: FrameKind, target: Target, onChunk: ChunkSink | undefined): Promise<FrameReply>;
  /** One readiness probe; resolves with what the replica reported (its load), rejects when it is not ready. */
  probe(entry: ReplicaEntry, timeoutMs: number): Promise<Record<string, unknown>>;
  /** OIP model metadata for the model `query` routed to. */
  metadata(target: Target, name: string, version: string | undefined): Promise<ModelMetadata>;
  close(): Promise<void>;
}

/** An anyserve replica: the framed hop, the body forwarded as bytes, never parsed. */
export class FramesTransport implements ReplicaTransport {
  readonly #client: FrameClient;

  /** `secret`: the replica's own (never the control-plane token); `ca`: trusted for an https replica besides the system's. */
  constructor(url: string, secret: string | undefined, ca: Buffer | string | undefined) {
    this.#client = new FrameClient({ url, ...(secret ? { token: secret } : {}), ...(ca ? { ca } : {}) });
  }

  get credential(): string | undefined {
    return this.#client.credential;
  }

  get target(): string {
    return this.#client.url;
  }

  get inFlight(): number {
    return this.#client.inFlight;
  }

  send(call: IncomingCall, kind: FrameKind, target: Target, onChunk: ChunkSink | undefined): Promise<FrameReply> {
    return this.#client.request(callMeta(call, kind, target.queryBytes), call.body, {
      timeoutMs: call.timeoutMs,
      signal: call.signal,
      ...(onChunk ? { onChunk } : {}),
    });
  }

  async probe(entry: ReplicaEntry, timeoutMs: number): Promise<Record<string, unknown>> {
    const reply = await this.#client.request({ k: "health" }, Buffer.alloc(0), { timeoutMs });
    const err = answerError(reply.meta, entry.replicaId);
    if (err) throw err;
    try {
      const body: unknown = JSON.parse(reply.body.toString("utf8"));
      return body !== null && typeof body === "object" ? (body as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }

  async metadata(target: Target, name: string, version: string | undefined): Promise<ModelMetadata> {
    const reply = await this.#client.request({ k: "meta", q: target.query, m: { name, version } }, Buffer.alloc(0), { timeoutMs: 10_000 });
    const err = answerError(reply.meta, target.entry.replicaId);
    if (err) throw err;
    return JSON.parse(reply.body.toString("utf8")) as ModelMetadata;
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}
