/**
 * Delegation at the replica (the seed describes it; its implementation left it to the API server): a call for a
 * capability this replica has no handler for is sent back to the API server with
 * `X-Delegated-From: <ids tried, this one last>` and `X-Delegation-Depth: n+1` — read by the API
 * server only because the request also shows `x-anyserve-replica: <id> <secret>` — and the answer
 * is relayed unchanged. The API server excludes every replica tried and stops past its depth limit,
 * so a request takes at most `max depth + 1` hops and never loops.
 *
 * With several API servers, it goes to the replica's current one, and to the next when that one
 * is gone or not ready (util/api-servers.ts) — again only while no byte of the answer arrived.
 */
import { Pool, type Dispatcher } from "undici";
import { AnyServeError } from "../errors.js";
import { type ChunkSink, describeModel, type IncomingCall, type InferBackend, type ModelMetadata } from "../protocol/call.js";
import { capabilityToHeaders, type CapabilityMap } from "../protocol/capability.js";
import { decodeJsonResponse, encodeJsonRequest } from "../protocol/json-codec.js";
import { decodeProtoRequest, encodeProtoResponse } from "../protocol/proto-codec.js";
import { CONTENT_TYPE_PROTOBUF, HEADER_INFERENCE_LENGTH, type EncodedBody } from "../protocol/types.js";
import { errorFromBody } from "../sdk/client.js";
import { readSse } from "../sdk/sse-reader.js";
import { toAbortSignal } from "../util/cancel.js";
import { REPLICA_HEADER } from "../util/auth.js";
import { trustedCas } from "../util/tls.js";
import type { ApiServers } from "../util/api-servers.js";

export interface DelegationOptions {
  /** The replica's API servers, shared with its `ctx.call` and object look-ups. */
  apiServers: ApiServers;
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
  /** One connection pool per API server, made on first use. */
  readonly #pools = new Map<string, Pool>();

  constructor(inner: InferBackend, options: DelegationOptions) {
    this.#inner = inner;
    this.#o = options;
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

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
  }

  #pool(apiServer: string): Pool {
    let pool = this.#pools.get(apiServer);
    if (pool === undefined) {
      const ca = trustedCas(this.#o.ca);
      pool = new Pool(new URL(apiServer).origin, { connections: 8, keepAliveTimeout: 30_000, ...(ca ? { connect: { ca } } : {}) });
      this.#pools.set(apiServer, pool);
    }
    return pool;
  }

  async #delegate(call: IncomingCall): Promise<EncodedBody> {
    const res = await this.#send(false, call);
    const body = Buffer.from(await res.body.arrayBuffer());
    const out: EncodedBody = { body, contentType: String(res.headers["content-type"] ?? "application/json") };
    const hl = res.headers[HEADER_INFERENCE_LENGTH];
    if (hl !== undefined) out.headerLength = Number(hl);
    return out;
  }

  /** The next SSE event is read only once `onChunk` took this one: undici's body, and TCP, hold the rest. */
  async #delegateStream(call: IncomingCall, onChunk: ChunkSink): Promise<void> {
    // The API server's stream route takes JSON (its answer is server-sent events of JSON): a gRPC
    // ModelStreamInfer request is re-encoded, its tensors in the binary extension so that no value
    // changes on the way.
    const res = await this.#send(true, call.format === "protobuf" ? asJsonCall(call) : call);
    for await (const data of readSse(res.body)) {
      // SSE carries JSON; a gRPC caller wants each chunk as protobuf.
      await onChunk(
        call.format === "protobuf"
          ? { body: encodeProtoResponse(decodeJsonResponse(Buffer.from(data))), contentType: CONTENT_TYPE_PROTOBUF }
          : { body: Buffer.from(data), contentType: "application/json" },
      );
    }
  }

  /**
   * Sends the delegated request to the current API server, and to the next ones while it may
   * (util/api-servers.ts; the request is a buffer, and nothing of the answer arrived yet). Resolves
   * with a 200 whose body is unread; any other answer is thrown as its error.
   */
  async #send(stream: boolean, call: IncomingCall): Promise<Dispatcher.ResponseData> {
    const tried = [...(call.tried ?? []), this.#o.replicaId];
    const byModel = modelPath(call, stream);
    const headers: Record<string, string> = {
      ...(byModel === undefined ? capabilityHeaders(call.query) : {}),
      "x-delegated-from": tried.join(","),
      "x-delegation-depth": String((call.depth ?? 0) + 1),
      "x-anyserve-timeout-ms": String(Math.max(1, Math.round(call.timeoutMs))),
      "x-request-id": call.requestId,
    };
    if (call.contentType !== undefined) headers["content-type"] = call.contentType;
    if (call.headerLength !== undefined) headers[HEADER_INFERENCE_LENGTH] = String(call.headerLength);
    // Our credential, not a token: it passes the inference check and makes the delegation headers count.
    headers[REPLICA_HEADER] = `${this.#o.replicaId} ${this.#o.secret}`;
    const signal = toAbortSignal(call.signal);
    let at = this.#o.apiServers.current;
    const attempt = async (apiServer: string, ms: number): Promise<Dispatcher.ResponseData> => {
      at = apiServer;
      headers["x-anyserve-timeout-ms"] = String(Math.max(1, Math.round(ms)));
      const res = await this.#pool(apiServer).request({
        method: "POST",
        path: byModel ?? (stream ? "/infer/stream" : "/infer"),
        headers,
        body: call.body,
        signal,
        headersTimeout: ms + 1_000,
        bodyTimeout: ms + 1_000,
      });
      if (res.statusCode === 200) return res;
      throw errorFromBody(res.statusCode, Buffer.from(await res.body.arrayBuffer()));
    };
    try {
      return await this.#o.apiServers.call(attempt, { timeoutMs: call.timeoutMs, replayable: true, signal });
    } catch (err) {
      if (err instanceof AnyServeError) throw asModelError(call, err);
      if (call.signal.aborted) throw new AnyServeError("CANCELLED", "the caller cancelled the delegated request");
      throw new AnyServeError(
        "REPLICA_UNREACHABLE",
        `replica '${this.#o.replicaId}' could not delegate to the API server ${at}: ${(err as Error).message}`,
      );
    }
  }
}

/**
 * An OIP model call (its query is the model and version, as the model route or gRPC `model_name`
 * made it) goes to the API server's model route: the name travels percent-encoded in the path —
 * any UTF-8 — and a miss is MODEL_NOT_FOUND there. Undefined for other calls.
 */
function modelPath(call: IncomingCall, stream: boolean): string | undefined {
  const m = call.model;
  if (m === undefined || call.query.model !== m.name || call.query.version !== m.version) return undefined;
  if (Object.keys(call.query).length !== (m.version === undefined ? 1 : 2)) return undefined;
  const version = m.version === undefined ? "" : `/versions/${encodeURIComponent(m.version)}`;
  return `/v2/models/${encodeURIComponent(m.name)}${version}/${stream ? "generate_stream" : "infer"}`;
}

/** The query as X-Capability headers; a value a header cannot carry (beyond Latin-1) is refused with its key. */
function capabilityHeaders(query: CapabilityMap): Record<string, string> {
  for (const key in query) {
    if (/[^\t\x20-\x7e\x80-\xff]/.test(query[key]!)) {
      throw new AnyServeError(
        "INVALID_CAPABILITY",
        `capability '${key}' = ${JSON.stringify(query[key]!.slice(0, 64))} cannot be delegated in an X-Capability header (Latin-1 text only); call the API server with it`,
      );
    }
  }
  return capabilityToHeaders(query);
}

/** A protobuf call as the same request in JSON with binary tensors (what `/infer/stream` accepts). */
function asJsonCall(call: IncomingCall): IncomingCall {
  const json = encodeJsonRequest(decodeProtoRequest(call.body), { binary: true, binaryOutputs: false });
  return { ...call, body: json.body, contentType: json.contentType, headerLength: json.headerLength, format: "json" };
}

/**
 * The API server found no replica for a delegated OIP model call: the caller asked for a model, so
 * it hears MODEL_NOT_FOUND, as it would from the API server's own model route.
 */
function asModelError(call: IncomingCall, err: AnyServeError): AnyServeError {
  if (err.code !== "NO_MATCHING_CAPABILITY" || call.model === undefined) return err;
  return new AnyServeError("MODEL_NOT_FOUND", `${describeModel(call.model)} is not served by any replica (${err.message})`);
}
