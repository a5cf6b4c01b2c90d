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
import { describeModel, type IncomingCall, type InferBackend, type ModelMetadata } from "../protocol/call.js";
import { capabilityToHeaders, type CapabilityMap } from "../protocol/capability.js";
import { decodeJsonResponse, encodeJsonRequest } from "../protocol/json-codec.js";
import { decodeProtoRequest, encodeProtoResponse } from "../protocol/proto-codec.js";
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

  stream(call: IncomingCall, onChunk: (chunk: EncodedBody) => void): Promise<void> {
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
    const res = await this.#send(false, call);
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200) throw asModelError(call, errorFromBody(res.statusCode, body));
    const out: EncodedBody = { body, contentType: String(res.headers["content-type"] ?? "application/json") };
    const hl = res.headers[HEADER_INFERENCE_LENGTH];
    if (hl !== undefined) out.headerLength = Number(hl);
    return out;
  }

  async #delegateStream(call: IncomingCall, onChunk: (chunk: EncodedBody) => void): Promise<void> {
    // The API server's stream route takes JSON (its answer is server-sent events of JSON): a gRPC
    // ModelStreamInfer request is re-encoded, its tensors in the binary extension so that no value
    // changes on the way.
    const res = await this.#send(true, call.format === "protobuf" ? asJsonCall(call) : call);
    if (res.statusCode !== 200) throw asModelError(call, errorFromBody(res.statusCode, Buffer.from(await res.body.arrayBuffer())));
    for await (const data of readSse(res.body)) {
      // SSE carries JSON; a gRPC caller wants each chunk as protobuf.
      onChunk(
        call.format === "protobuf"
          ? { body: encodeProtoResponse(decodeJsonResponse(Buffer.from(data))), contentType: CONTENT_TYPE_PROTOBUF }
          : { body: Buffer.from(data), contentType: "application/json" },
      );
    }
  }

  #send(stream: boolean, call: IncomingCall) {
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
    return this.#pool
      .request({
        method: "POST",
        path: byModel ?? (stream ? "/infer/stream" : "/infer"),
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
