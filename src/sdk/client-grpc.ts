/** The client's gRPC transport: standard `inference.GRPCInferenceService` calls, errors rebuilt with their code. */
import * as grpc from "@grpc/grpc-js";
import { AnyServeError, codeForGrpcStatus, isErrorCode } from "../errors.js";
import type { CapabilityMap } from "../protocol/capability.js";
import { decodeProtoResponse, decodeStreamResponse, encodeProtoRequest } from "../protocol/proto-codec.js";
import type { InferRequest, InferResponse } from "../protocol/types.js";
import { serviceDefinition } from "../protocol/grpc-service.js";
import type { ClientTransport, InferOptions } from "./client.js";
import { trustedCas } from "../util/tls.js";

const ServiceClient = grpc.makeGenericClientConstructor(serviceDefinition(), "GRPCInferenceService");

type Unary = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => grpc.ClientUnaryCall;

export class GrpcTransport implements ClientTransport {
  readonly #client: grpc.Client & Record<string, Unary>;
  /** Metadata every call carries (the inference token). */
  readonly #auth: [string, string][];

  /** TLS when `ca` is given or the address starts with `grpcs://`; `inferenceToken` goes in every call's metadata. */
  constructor(address: string, o: { inferenceToken?: string | undefined; ca?: string | Buffer | undefined } = {}) {
    const secure = o.ca !== undefined || address.startsWith("grpcs://");
    const credentials = secure
      ? grpc.credentials.createSsl(o.ca === undefined ? null : Buffer.from(trustedCas(o.ca)!.join("\n")))
      : grpc.credentials.createInsecure();
    this.#client = new ServiceClient(address.replace(/^grpcs?:\/\//, ""), credentials, {
      "grpc.max_receive_message_length": 256 * 1024 * 1024,
      "grpc.max_send_message_length": 256 * 1024 * 1024,
    }) as unknown as grpc.Client & Record<string, Unary>;
    this.#auth = o.inferenceToken ? [["authorization", `Bearer ${o.inferenceToken}`]] : [];
  }

  async infer(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): Promise<InferResponse> {
    const { body, md } = prepare(query, req, o, this.#auth);
    const raw = await this.#unary("ModelInfer", body, md, o);
    return decodeProtoResponse(raw as Buffer);
  }

  async *stream(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): AsyncIterable<InferResponse> {
    const { body, md } = prepare(query, req, o, this.#auth);
    if (o.signal?.aborted) throw cancelled();
    const call = this.#client.makeBidiStreamRequest(
      "/inference.GRPCInferenceService/ModelStreamInfer",
      (b: Buffer) => b,
      (b: Buffer) => b,
      md,
      { deadline: Date.now() + o.timeout },
    );
    const onAbort = (): void => call.cancel();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    call.write(body);
    call.end();
    try {
      for await (const chunk of call as AsyncIterable<Buffer>) {
        const msg = decodeStreamResponse(chunk);
        if (msg.errorMessage !== undefined) throw streamError(msg.errorMessage);
        if (msg.response) yield msg.response;
      }
    } catch (err) {
      throw toAnyServeError(err);
    } finally {
      o.signal?.removeEventListener("abort", onAbort);
    }
  }

  async isAlive(): Promise<boolean> {
    try {
      const res = (await this.#unary("ServerLive", {}, new grpc.Metadata(), { timeout: 5_000 })) as { live: boolean };
      return res.live;
    } catch {
      return false;
    }
  }

  async isModelReady(name: string, version?: string): Promise<boolean> {
    try {
      const res = (await this.#unary("ModelReady", { name, version: version ?? "" }, metadata(this.#auth), { timeout: 5_000 })) as {
        ready: boolean;
      };
      return res.ready;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.#client.close();
  }

  #unary(method: string, req: unknown, md: grpc.Metadata, o: { timeout: number; signal?: AbortSignal }): Promise<unknown> {
    // A signal that fired before the call (e.g. while the transport was loading) never fires again.
    if (o.signal?.aborted) return Promise.reject(cancelled());
    return new Promise((resolve, reject) => {
      const call = this.#client[method]!(req, md, { deadline: Date.now() + o.timeout }, (err, res) => {
        o.signal?.removeEventListener("abort", onAbort);
        if (err) reject(toAnyServeError(err));
        else resolve(res);
      });
      const onAbort = (): void => call.cancel();
      o.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

function metadata(pairs: [string, string][]): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of pairs) md.set(k, v);
  return md;
}

function prepare(query: CapabilityMap, req: InferRequest, o: InferOptions, auth: [string, string][]): { body: Buffer; md: grpc.Metadata } {
  const md = metadata(auth);
  const named: InferRequest = { ...req };
  for (const key in query) {
    if (key === "model") named.modelName = query[key]!;
    else if (key === "version" && query.model !== undefined) named.modelVersion = query[key]!;
    else md.set(`x-capability-${key.replace(/_/g, "-")}`, query[key]!);
  }
  for (const [k, v] of Object.entries(o.headers ?? {})) md.set(k.toLowerCase(), v);
  return { body: encodeProtoRequest(named), md };
}

function toAnyServeError(err: unknown): AnyServeError {
  if (err instanceof AnyServeError) return err;
  const e = err as grpc.ServiceError;
  const code = e.metadata?.get("x-anyserve-code")[0];
  const message = e.details || e.message;
  // UNAVAILABLE without our code is grpc-js's own: no connection, or it dropped before an answer.
  if (!isErrorCode(code) && e.code === 14) return new AnyServeError("REPLICA_UNREACHABLE", message, { connectionLost: true });
  return new AnyServeError(isErrorCode(code) ? code : codeForGrpcStatus(e.code), message);
}

function cancelled(): AnyServeError {
  return new AnyServeError("CANCELLED", "the call was cancelled");
}

/** Stream errors arrive as `[CODE] message` in `error_message`. */
function streamError(text: string): AnyServeError {
  const m = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(text);
  return m && isErrorCode(m[1]) ? new AnyServeError(m[1], m[2]!) : new AnyServeError("INTERNAL", text);
}
