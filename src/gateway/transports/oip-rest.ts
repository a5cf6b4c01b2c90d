/**
 * A foreign replica that speaks OIP v2 REST (registered with `protocol: oip-rest` and its
 * `http_endpoint`): Triton's, KServe's or MLServer's HTTP port. One undici pool per replica, kept
 * alive across calls.
 *
 * - Inference: `POST /v2/models/{m}[/versions/{v}]/infer` with the model the route names
 *   ({@link foreignModel}). A JSON caller's body goes as it is (binary tensor data and its
 *   `Inference-Header-Content-Length` too); a protobuf caller's is decoded and sent as JSON, and
 *   the JSON answer encoded back as a `ModelInferResponse`.
 * - Streams: OIP REST has none, so a stream call is one inference whose answer is the stream's
 *   only chunk.
 * - Health: `GET /v2/health/ready`, then `GET /v2/models/{m}/ready` for each registered model.
 * - Metadata: `GET /v2/models/{m}[/versions/{v}]`.
 */
import { Pool } from "undici";
import type { Readable } from "node:stream";
import { AnyServeError } from "../../errors.js";
import type { IncomingCall, ModelMetadata } from "../../protocol/call.js";
import { decodeJsonResponse, encodeJsonRequest } from "../../protocol/json-codec.js";
import { HEADER_INFERENCE_LENGTH, type InferRequest } from "../../protocol/types.js";
import type { FrameReply } from "../../transport/frame-client.js";
import type { FrameKind } from "../../transport/call-meta.js";
import type { ReplicaEntry } from "../../routing/registry.js";
import { toAbortSignal } from "../../util/cancel.js";
import {
  cancelReason,
  decodeCall,
  describeReplica,
  errorFromHttp,
  foreignModel,
  foreignModels,
  isProtobufCall,
  MAX_ANSWER_BYTES,
  replyIn,
  type ForeignModel,
} from "./oip-common.js";
import type { ChunkSink, ReplicaTransport, Target } from "./transport.js";

/** A body as undici sends it, and the headers that describe it. */
interface Outgoing {
  body: Buffer;
  headers: Record<string, string>;
}

export class OipRestTransport implements ReplicaTransport {
  readonly target: string;
  readonly #pool: Pool;
  #inFlight = 0;

  constructor(entry: ReplicaEntry) {
    this.target = entry.httpEndpoint ?? "";
    this.#pool = new Pool(this.target, { connections: 32, keepAliveTimeout: 30_000 });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  send(call: IncomingCall, _kind: FrameKind, target: Target, onChunk: ChunkSink | undefined): Promise<FrameReply> {
    let out: Outgoing;
    let req: InferRequest | undefined;
    try {
      if (isProtobufCall(call)) {
        req = decodeCall(call);
        // FP16/BF16 have no JSON form: then every input goes as binary tensor data.
        const binary = req.inputs.some((t) => t.datatype === "FP16" || t.datatype === "BF16");
        const encoded = encodeJsonRequest(req, { binary, binaryOutputs: false });
        out = { body: encoded.body, headers: { "content-type": encoded.contentType } };
        if (encoded.headerLength !== undefined) out.headers[HEADER_INFERENCE_LENGTH] = String(encoded.headerLength);
      } else {
        out = { body: call.body, headers: { "content-type": call.contentType ?? "application/json" } };
        if (call.headerLength !== undefined) out.headers[HEADER_INFERENCE_LENGTH] = String(call.headerLength);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    out.headers["x-request-id"] = call.requestId;
    this.#inFlight++;
    return this.#post(call, target, out, req)
      .then((reply) => {
        // No streaming in OIP REST: the one answer is the stream's one chunk.
        if (onChunk === undefined) return reply;
        // The call ends once the caller's side has taken the chunk (its back-pressure, as on the frame hop).
        const taken = onChunk(reply.meta, reply.body);
        const end: FrameReply = { meta: {}, body: Buffer.alloc(0) };
        return taken instanceof Promise
          ? taken.then(
              () => end,
              () => end,
            )
          : end;
      })
      .finally(() => {
        this.#inFlight--;
      });
  }

  async #post(call: IncomingCall, target: Target, out: Outgoing, req: InferRequest | undefined): Promise<FrameReply> {
    const { entry } = target;
    const { status, headers, body } = await this.#request(entry, call, {
      method: "POST",
      path: `${modelPath(foreignModel(target))}/infer`,
      headers: out.headers,
      body: out.body,
      timeoutMs: call.timeoutMs,
    });
    if (status !== 200) throw errorFromHttp(entry, status, body);
    const hlHeader = headers[HEADER_INFERENCE_LENGTH];
    const hl = hlHeader === undefined ? undefined : Number(hlHeader);
    if (call.format === "protobuf") return replyIn(call, decodeJsonResponse(body, hl), req);
    const ct = typeof headers["content-type"] === "string" ? headers["content-type"] : "application/json";
    return { meta: hl === undefined ? { ct } : { ct, hl }, body };
  }

  async probe(entry: ReplicaEntry, timeoutMs: number): Promise<Record<string, unknown>> {
    const ready = await this.#request(entry, undefined, { method: "GET", path: "/v2/health/ready", timeoutMs });
    if (ready.status !== 200) throw new Error(`${entry.httpEndpoint} answered ${ready.status} to GET /v2/health/ready`);
    for (const m of foreignModels(entry)) {
      const path = `${modelPath(m)}/ready`;
      const res = await this.#request(entry, undefined, { method: "GET", path, timeoutMs });
      if (res.status !== 200) throw new Error(`${entry.httpEndpoint} answered ${res.status} to GET ${path}`);
    }
    return {};
  }

  async metadata(target: Target, _name: string, _version: string | undefined): Promise<ModelMetadata> {
    const { status, body } = await this.#request(target.entry, undefined, {
      method: "GET",
      path: modelPath(foreignModel(target)),
      timeoutMs: 10_000,
    });
    if (status !== 200) throw errorFromHttp(target.entry, status, body);
    try {
      return JSON.parse(body.toString("utf8")) as ModelMetadata;
    } catch {
      throw new AnyServeError("UPSTREAM_PROTOCOL_ERROR", `${describeReplica(target.entry)} answered model metadata that is not JSON`);
    }
  }

  /**
   * One request, its answer read whole (at most {@link MAX_ANSWER_BYTES}). Failures before an
   * answer are REPLICA_UNREACHABLE (retryable elsewhere), DEADLINE_EXCEEDED or the caller's
   * cancellation; a connection lost while the answer was read is REPLICA_UNREACHABLE with
   * `responseStarted`, never retried.
   */
  async #request(
    entry: ReplicaEntry,
    call: IncomingCall | undefined,
    o: { method: "GET" | "POST"; path: string; headers?: Record<string, string>; body?: Buffer; timeoutMs: number },
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    let res: Awaited<ReturnType<Pool["request"]>>;
    try {
      res = await this.#pool.request({
        method: o.method,
        path: o.path,
        ...(o.headers ? { headers: o.headers } : {}),
        ...(o.body ? { body: o.body } : {}),
        headersTimeout: o.timeoutMs,
        bodyTimeout: o.timeoutMs,
        ...(call ? { signal: toAbortSignal(call.signal) } : {}),
      });
    } catch (err) {
      throw this.#failure(entry, call, err, false);
    }
    try {
      return { status: res.statusCode, headers: res.headers, body: await readAll(res.body, entry) };
    } catch (err) {
      throw this.#failure(entry, call, err, true);
    }
  }

  #failure(entry: ReplicaEntry, call: IncomingCall | undefined, err: unknown, responseStarted: boolean): AnyServeError {
    if (err instanceof AnyServeError) return err;
    if (call?.signal.aborted) return cancelReason(call);
    const code = (err as { code?: unknown }).code;
    if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
      return new AnyServeError("DEADLINE_EXCEEDED", `no answer from ${describeReplica(entry)} within the request's timeout`);
    }
    return new AnyServeError("REPLICA_UNREACHABLE", `${describeReplica(entry)} could not be reached: ${(err as Error).message}`, {
      responseStarted,
    });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

/** `/v2/models/{m}[/versions/{v}]`, segments percent-encoded. */
function modelPath(m: ForeignModel): string {
  const base = `/v2/models/${encodeURIComponent(m.name)}`;
  return m.version ? `${base}/versions/${encodeURIComponent(m.version)}` : base;
}

/** A whole answer body, refused past {@link MAX_ANSWER_BYTES}. */
async function readAll(body: Readable, entry: ReplicaEntry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) {
      body.destroy();
      throw new AnyServeError("UPSTREAM_PROTOCOL_ERROR", `${describeReplica(entry)} answered more than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
