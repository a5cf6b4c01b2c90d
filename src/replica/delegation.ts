/**
 * Delegation at the replica (the seed describes it; its implementation left it to the API server): a call for a
 * capability this replica has no handler for is sent back to the API server with
 * `X-Delegated-From: <ids tried, this one last>` and `X-Delegation-Depth: n+1` — read by the API
 * server only because the request also shows `x-anyserve-replica: <id> <secret>` — and the answer
 * is relayed unchanged. The API server excludes every replica tried and stops past its depth limit,
 * so a request takes at most `max depth + 1` hops and never loops.
 */
import { Pool } from "undici";
import { AnyServeError } from "../errors.js";
import type { ChunkSink, IncomingCall, InferBackend, ModelMetadata } from "../protocol/call.js";
import { capabilityToHeaders, type CapabilityMap } from "../protocol/capability.js";
import { decodeJsonResponse } from "../protocol/json-codec.js";
import { encodeProtoResponse } from "../protocol/proto-codec.js";
import { CONTENT_TYPE_PROTOBUF, HEADER_INFERENCE_LENGTH, type EncodedBody } from "../protocol/types.js";
import { errorFromBody } from "../sdk/client.js";
import { readSse } from "../sdk/sse-reader.js";
import { toAbortSignal } from "../util/cancel.js";
import { REPLICA_HEADER } from "../util/auth.js";
import { trustedCas } from "../util/tls.js";

export interface DelegationOptions {
  apiServer: string;
  replicaId: string;
  /** The replica's own secret: with its id in `x-anyserve-replica`, it makes the API server read our delegation headers. */
  secret: string;
  /** CA bundle for an `https://` API server, besides the system's. */
  ca?: Buffer | string | undefined;
  /** True when this replica has a handler for the call's query (a model route's: see `Dispatcher.canServe`). */
  canServe: (query: CapabilityMap, call: IncomingCall) => boolean;
}

export class DelegatingBackend implements InferBackend {
  readonly #inner: InferBackend;
  readonly #o: DelegationOptions;
  readonly #pool: Pool;

  constructor(inner: InferBackend, options: DelegationOptions) {
    this.#inner = inner;
    this.#o = options;
    const ca = trustedCas(options.ca);
    this.#pool = new Pool(new URL(options.apiServer).origin, {
      connections: 8,
      keepAliveTimeout: 30_000,
      ...(ca ? { connect: { ca } } : {}),
    });
  }

  ready(): boolean {
    return this.#inner.ready();
  }

  infer(call: IncomingCall): Promise<EncodedBody> {
    return this.#o.canServe(call.query, call) ? this.#inner.infer(call) : this.#delegate(call);
  }

  stream(call: IncomingCall, onChunk: ChunkSink): Promise<void> {
    return this.#o.canServe(call.query, call) ? this.#inner.stream(call, onChunk) : this.#delegateStream(call, onChunk);
  }

  modelMetadata(query: CapabilityMap, name: string, version?: string): Promise<ModelMetadata> {
    return this.#inner.modelMetadata(query, name, version);
  }

  modelReady(query: CapabilityMap): Promise<boolean> {
    return this.#inner.modelReady(query);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  async #delegate(call: IncomingCall): Promise<EncodedBody> {
    const res = await this.#send("/infer", call);
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200) throw errorFromBody(res.statusCode, body);
    const out: EncodedBody = { body, contentType: String(res.headers["content-type"] ?? "application/json") };
    const hl = res.headers[HEADER_INFERENCE_LENGTH];
    if (hl !== undefined) out.headerLength = Number(hl);
    return out;
  }

  /** The next SSE event is read only once `onChunk` took this one: undici's body, and TCP, hold the rest. */
  async #delegateStream(call: IncomingCall, onChunk: ChunkSink): Promise<void> {
    const res = await this.#send("/infer/stream", call);
    if (res.statusCode !== 200) throw errorFromBody(res.statusCode, Buffer.from(await res.body.arrayBuffer()));
    for await (const data of readSse(res.body)) {
      // SSE carries JSON; a gRPC caller wants each chunk as protobuf.
      await onChunk(
        call.format === "protobuf"
          ? { body: encodeProtoResponse(decodeJsonResponse(Buffer.from(data))), contentType: CONTENT_TYPE_PROTOBUF }
          : { body: Buffer.from(data), contentType: "application/json" },
      );
    }
  }

  #send(path: string, call: IncomingCall) {
    const tried = [...(call.tried ?? []), this.#o.replicaId];
    const headers: Record<string, string> = {
      ...capabilityToHeaders(call.query),
      "x-delegated-from": tried.join(","),
      "x-delegation-depth": String((call.depth ?? 0) + 1),
      "x-anyserve-timeout-ms": String(Math.max(1, Math.round(call.timeoutMs))),
      "x-request-id": call.requestId,
    };
    if (call.contentType !== undefined) headers["content-type"] = call.contentType;
    if (call.headerLength !== undefined) headers[HEADER_INFERENCE_LENGTH] = String(call.headerLength);
    // Our credential, not a token: it passes the inference check and makes the delegation headers count.
    headers[REPLICA_HEADER] = `${this.#o.replicaId} ${this.#o.secret}`;
    return this.#pool
      .request({
        method: "POST",
        path,
        headers,
        body: call.body,
        signal: toAbortSignal(call.signal),
        headersTimeout: call.timeoutMs + 1_000,
        bodyTimeout: call.timeoutMs + 1_000,
      })
      .catch((err: unknown) => {
        if (call.signal.aborted) throw new AnyServeError("CANCELLED", "the caller cancelled the delegated request");
        throw new AnyServeError(
          "REPLICA_UNREACHABLE",
          `replica '${this.#o.replicaId}' could not delegate to the API server ${this.#o.apiServer}: ${(err as Error).message}`,
        );
      });
  }
}
