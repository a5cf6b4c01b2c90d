/**
 * A foreign replica that speaks OIP v2 gRPC (`inference.GRPCInferenceService` at its registered
 * `endpoint`): the seed's replicas, Triton, KServe, MLServer. One grpc-js client per replica — one
 * HTTP/2 channel that multiplexes every call and reconnects by itself.
 *
 * - `ModelInfer`: a protobuf caller's body goes as it is, with `model_name`/`model_version` set to
 *   the model the route names ({@link foreignModel}); a JSON caller's body is decoded and encoded
 *   as a `ModelInferRequest`, and the answer back as JSON (in the seed's `contents` form when the
 *   request came so).
 * - Streams: `ModelStreamInfer` with the one request, write side closed; each
 *   `ModelStreamInferResponse` is a chunk, an `error_message` ends the stream with WORKER_ERROR.
 * - Health: `ServerReady`, then `ModelReady` for each registered model; a server that does not
 *   implement one (UNIMPLEMENTED) answered, so it counts as ready.
 * - Metadata: `ModelMetadata`.
 */
import * as grpc from "@grpc/grpc-js";
import { AnyServeError } from "../../errors.js";
import type { IncomingCall, ModelMetadata } from "../../protocol/call.js";
import { serviceDefinition } from "../../protocol/grpc-service.js";
import { decodeProtoResponse, encodeProtoRequest } from "../../protocol/proto-codec.js";
import { readStreamResponse, withModelName } from "../../protocol/proto-scan.js";
import { CONTENT_TYPE_PROTOBUF, type InferRequest } from "../../protocol/types.js";
import type { FrameReply } from "../../transport/frame-client.js";
import type { FrameKind } from "../../transport/call-meta.js";
import type { ReplicaEntry } from "../../routing/registry.js";
import {
  cancelReason,
  decodeCall,
  errorFromGrpc,
  foreignModel,
  foreignModels,
  isProtobufCall,
  MAX_ANSWER_BYTES,
  onCancel,
  replyIn,
  type ForeignModel,
} from "./oip-common.js";
import type { ChunkSink, ReplicaTransport, Target } from "./transport.js";

const ServiceClient = grpc.makeGenericClientConstructor(serviceDefinition(), "GRPCInferenceService");
type Unary = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => grpc.ClientUnaryCall;
type Client = grpc.Client &
  Record<string, Unary> & { ModelStreamInfer(md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientDuplexStream<Buffer, Buffer> };

const PROTOBUF_REPLY = { ct: CONTENT_TYPE_PROTOBUF };

export class OipGrpcTransport implements ReplicaTransport {
  readonly target: string;
  readonly #client: Client;
  #inFlight = 0;

  constructor(entry: ReplicaEntry) {
    this.target = `grpc://${entry.endpoint}`;
    this.#client = new ServiceClient(entry.endpoint, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": MAX_ANSWER_BYTES,
      "grpc.max_send_message_length": MAX_ANSWER_BYTES,
    }) as unknown as Client;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  send(call: IncomingCall, kind: FrameKind, target: Target, onChunk: ChunkSink | undefined): Promise<FrameReply> {
    let body: Buffer;
    let req: InferRequest | undefined;
    const model = foreignModel(target);
    try {
      if (isProtobufCall(call)) body = withModelName(call.body, model.name, model.version);
      else {
        req = decodeCall(call);
        body = encodeProtoRequest({ ...req, modelName: model.name, ...(model.version ? { modelVersion: model.version } : {}) });
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (call.signal.aborted) return Promise.reject(cancelReason(call));
    this.#inFlight++;
    const done = kind === "stream" ? this.#stream(call, target.entry, body, req, onChunk) : this.#infer(call, target.entry, body, req);
    return done.finally(() => {
      this.#inFlight--;
    });
  }

  #infer(call: IncomingCall, entry: ReplicaEntry, body: Buffer, req: InferRequest | undefined): Promise<FrameReply> {
    return new Promise((resolve, reject) => {
      const rpc = this.#client.ModelInfer!(body, metadataOf(call), { deadline: Date.now() + call.timeoutMs }, (err, answer) => {
        stop();
        if (err)
          reject(
            call.signal.aborted ? cancelReason(call) : errorFromGrpc(entry, err.code, err.details, err.metadata?.get("x-anyserve-code")[0]),
          );
        else {
          try {
            resolve(this.#reply(call, answer as Buffer, req));
          } catch (e) {
            reject(e);
          }
        }
      });
      const stop = onCancel(call, () => rpc.cancel());
    });
  }

  #stream(
    call: IncomingCall,
    entry: ReplicaEntry,
    body: Buffer,
    req: InferRequest | undefined,
    onChunk: ChunkSink | undefined,
  ): Promise<FrameReply> {
    return new Promise((resolve, reject) => {
      const rpc = this.#client.ModelStreamInfer(metadataOf(call), { deadline: Date.now() + call.timeoutMs });
      let settled = false;
      const finish = (err: AnyServeError | undefined): void => {
        if (settled) return;
        settled = true;
        stop();
        if (err) {
          rpc.cancel();
          reject(err);
        } else resolve({ meta: {}, body: Buffer.alloc(0) });
      };
      const stop = onCancel(call, () => rpc.cancel());
      rpc.on("data", (message: Buffer) => {
        if (settled) return;
        try {
          const { errorMessage, inferResponse } = readStreamResponse(message);
          if (errorMessage !== "") {
            finish(new AnyServeError("WORKER_ERROR", `${entry.replicaId} (OIP gRPC stream): ${errorMessage}`));
            return;
          }
          if (inferResponse === undefined) return;
          const reply = this.#reply(call, inferResponse, req);
          const taken = onChunk?.(reply.meta, reply.body);
          // Back-pressure: while the caller's side has not taken this answer, read no more from the
          // foreign server. A paused stream stops asking grpc-js for messages, its HTTP/2 window
          // fills and the server's writes wait, so one stream holds a few messages here, not all.
          if (taken instanceof Promise) {
            rpc.pause();
            const resume = (): void => {
              if (!settled) rpc.resume();
            };
            taken.then(resume, resume);
          }
        } catch (err) {
          finish(AnyServeError.from(err, "UPSTREAM_PROTOCOL_ERROR"));
        }
      });
      rpc.on("error", (err: grpc.ServiceError) => {
        finish(
          call.signal.aborted ? cancelReason(call) : errorFromGrpc(entry, err.code, err.details, err.metadata?.get("x-anyserve-code")[0]),
        );
      });
      rpc.on("end", () => finish(undefined));
      rpc.write(body);
      rpc.end();
    });
  }

  /** A `ModelInferResponse` as the caller wants it: unchanged for protobuf, decoded and encoded for JSON. */
  #reply(call: IncomingCall, answer: Buffer, req: InferRequest | undefined): FrameReply {
    if (call.format === "protobuf") return { meta: PROTOBUF_REPLY, body: answer };
    return replyIn(call, decodeProtoResponse(answer), req);
  }

  async probe(entry: ReplicaEntry, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    const server = (await this.#unary("ServerReady", {}, deadline, entry)) as { ready?: boolean } | undefined;
    if (server !== undefined && server.ready !== true) throw new Error(`${entry.endpoint} answered ServerReady: not ready`);
    for (const m of foreignModels(entry)) {
      const model = (await this.#unary("ModelReady", { name: m.name, version: m.version ?? "" }, deadline, entry)) as
        | { ready?: boolean }
        | undefined;
      if (model !== undefined && model.ready !== true)
        throw new Error(`${entry.endpoint} answered ModelReady: model ${label(m)} is not ready`);
    }
    return {};
  }

  async metadata(target: Target, _name: string, _version: string | undefined): Promise<ModelMetadata> {
    const m = foreignModel(target);
    const meta = (await this.#unary(
      "ModelMetadata",
      { name: m.name, version: m.version ?? "" },
      Date.now() + 10_000,
      target.entry,
      true,
    )) as ModelMetadata | undefined;
    if (meta === undefined) throw new AnyServeError("MODEL_NOT_FOUND", `${target.entry.endpoint} does not answer ModelMetadata`);
    const dims = (t: { name: string; datatype: string; shape: unknown[] }) => ({ ...t, shape: t.shape.map((d) => Number(String(d))) });
    return { ...meta, inputs: meta.inputs.map(dims), outputs: meta.outputs.map(dims) };
  }

  /** A small RPC; undefined when the server does not implement it (it answered, so it is up), unless `strict`. */
  #unary(method: string, req: unknown, deadline: number, entry: ReplicaEntry, strict = false): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#client[method]!(req, new grpc.Metadata(), { deadline }, (err, res) => {
        if (!err) resolve(res);
        else if (err.code === grpc.status.UNIMPLEMENTED && !strict) resolve(undefined);
        else reject(errorFromGrpc(entry, err.code, err.details, undefined));
      });
    });
  }

  async close(): Promise<void> {
    this.#client.close();
  }
}

function label(m: ForeignModel): string {
  return m.version ? `'${m.name}' version '${m.version}'` : `'${m.name}'`;
}

function metadataOf(call: IncomingCall): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("x-request-id", call.requestId);
  return md;
}
