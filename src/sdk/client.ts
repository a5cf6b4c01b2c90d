/**
 * The client for users and tests: calls a capability through the API server (or one replica
 * directly) over REST or gRPC, and decodes the answer to JS values.
 *
 * @example
 * ```ts
 * import { Client } from "anyserve";
 * const client = new Client({ apiServer: "http://localhost:8080" });
 * const answer = await client.infer({ type: "chat" }, { text: "hello" }, { timeout: 5000 });
 * for await (const token of client.stream({ type: "stream" }, { text: "one two" })) console.log(token);
 * await client.close();
 * ```
 */
import { Pool } from "undici";
import { AnyServeError } from "../errors.js";
import { capabilityToHeaders, normalizeCapability, type CapabilityInput, type CapabilityMap } from "../protocol/capability.js";
import { HEADER_INFERENCE_LENGTH, type InferRequest, type InferResponse, type Parameters } from "../protocol/types.js";
import { inputsToRequest, responseToValue } from "../protocol/values.js";
import { GrpcTransport } from "./client-grpc.js";
import { DirectTransport } from "./direct/direct-transport.js";
import type { RouteCacheState } from "./direct/route-cache.js";
import { readSse } from "./sse-reader.js";
import { decodeAnswer, encodeCall, errorFromBody } from "./wire.js";

export { errorFromBody };

export interface ClientOptions {
  /** The API server's REST URL, e.g. http://localhost:8080. */
  apiServer?: string;
  /** A replica's REST URL (http://…) to call it directly, or a gRPC `host:port` with protocol "grpc". */
  endpoint?: string;
  /** "rest" (default) or "grpc". With grpc, `apiServer`/`endpoint` is the gRPC `host:port`. */
  protocol?: "rest" | "grpc";
  /** Default timeout per call (ms), default 60 000. */
  timeout?: number;
  /** REST connections kept to the server, default 16. */
  connections?: number;
  /**
   * Call replicas directly over their frame endpoints, chosen by this client from the API
   * server's route table (`GET /routes/watch`), and through the API server only when no replica
   * in the table can take the call or a direct attempt failed before the replica ran it. Needs
   * `apiServer` and REST; streams go direct too. Default false. See docs/routing.md, "Direct path".
   *
   * @example
   * ```ts
   * const client = new Client({ apiServer: "http://localhost:8080", direct: true, token: process.env.ANYSERVE_TOKEN });
   * await client.infer({ type: "embed" }, { text: "hi" }); // the first calls go through the API server until the table arrives
   * await client.close(); // closes the watch stream and every replica connection
   * ```
   */
  direct?: boolean;
  /** The API server's control-plane token (`--token`): the route table and the replicas' frame endpoints need it when one is set. */
  token?: string;
}

export interface InferOptions {
  /** This call's timeout (ms). */
  timeout?: number;
  parameters?: Parameters;
  id?: string;
  /** Send tensors in the binary tensor extension (REST). Default: only when a tensor needs it (FP16/BF16). */
  binary?: boolean;
  signal?: AbortSignal;
  /** Headers to add (REST) or metadata (gRPC), e.g. delegation headers. */
  headers?: Record<string, string>;
}

/** How a client talks to a server; REST and gRPC implement it. */
export interface ClientTransport {
  infer(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): Promise<InferResponse>;
  stream(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): AsyncIterable<InferResponse>;
  isAlive(): Promise<boolean>;
  isModelReady(name: string, version?: string): Promise<boolean>;
  close(): Promise<void>;
}

export class Client {
  readonly #transport: ClientTransport;
  readonly #timeout: number;

  constructor(options: ClientOptions) {
    const target = options.endpoint ?? options.apiServer;
    if (!target) throw new TypeError("Client needs apiServer or endpoint");
    this.#timeout = options.timeout ?? 60_000;
    if (options.direct && (options.apiServer === undefined || options.endpoint !== undefined || options.protocol === "grpc")) {
      throw new TypeError("Client: direct needs apiServer (its route table), without endpoint, over REST");
    }
    const rest = options.protocol === "grpc" ? undefined : new RestTransport(target, options.connections ?? 16);
    this.#transport =
      rest === undefined
        ? new GrpcTransport(target)
        : options.direct
          ? new DirectTransport({ apiServer: target, token: options.token, fallback: rest })
          : rest;
  }

  /** With `direct`: the route table as this client has it (version, replicas, stream state); otherwise undefined. */
  routes(): RouteCacheState | undefined {
    return this.#transport instanceof DirectTransport ? this.#transport.routes() : undefined;
  }

  /** Calls `capability` with `inputs` (an object of name → value, OIP tensors, or one value) and returns the decoded answer. */
  async infer(capability: CapabilityInput, inputs: unknown, options: InferOptions = {}): Promise<unknown> {
    return responseToValue(await this.inferRaw(capability, inputs, options));
  }

  /** Like {@link infer} but returns the whole OIP response. */
  inferRaw(capability: CapabilityInput, inputs: unknown, options: InferOptions = {}): Promise<InferResponse> {
    const { query, req } = this.#prepare(capability, inputs, options);
    return this.#transport.infer(query, req, { ...options, timeout: options.timeout ?? this.#timeout });
  }

  /** Streams the decoded chunks of a streaming capability. */
  async *stream(capability: CapabilityInput, inputs: unknown, options: InferOptions = {}): AsyncIterable<unknown> {
    const { query, req } = this.#prepare(capability, inputs, options);
    for await (const res of this.#transport.stream(query, req, { ...options, timeout: options.timeout ?? this.#timeout })) {
      yield responseToValue(res);
    }
  }

  isAlive(): Promise<boolean> {
    return this.#transport.isAlive();
  }

  isModelReady(name: string, version?: string): Promise<boolean> {
    return this.#transport.isModelReady(name, version);
  }

  close(): Promise<void> {
    return this.#transport.close();
  }

  #prepare(capability: CapabilityInput, inputs: unknown, o: InferOptions): { query: CapabilityMap; req: InferRequest } {
    const query = normalizeCapability(capability, "capability");
    const req = inputsToRequest(inputs);
    if (o.parameters) req.parameters = { ...req.parameters, ...o.parameters };
    if (o.id !== undefined) req.id = o.id;
    return { query, req };
  }
}

/** REST over a pooled keep-alive connection set (undici). */
class RestTransport implements ClientTransport {
  readonly #pool: Pool;

  constructor(url: string, connections: number) {
    this.#pool = new Pool(new URL(url).origin, { connections, keepAliveTimeout: 30_000 });
  }

  async infer(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): Promise<InferResponse> {
    const res = await this.#post("/infer", query, req, o);
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200) throw errorFromBody(res.statusCode, body);
    const hl = res.headers[HEADER_INFERENCE_LENGTH];
    return decodeAnswer(body, String(res.headers["content-type"] ?? "application/json"), hl === undefined ? undefined : Number(hl));
  }

  async *stream(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): AsyncIterable<InferResponse> {
    const res = await this.#post("/infer/stream", query, req, o);
    if (res.statusCode !== 200) throw errorFromBody(res.statusCode, Buffer.from(await res.body.arrayBuffer()));
    for await (const data of readSse(res.body)) {
      yield decodeAnswer(Buffer.from(data), "application/json", undefined);
    }
  }

  async isAlive(): Promise<boolean> {
    return this.#get("/v2/health/live");
  }

  async isModelReady(name: string, version?: string): Promise<boolean> {
    const v = version === undefined ? "" : `/versions/${encodeURIComponent(version)}`;
    return this.#get(`/v2/models/${encodeURIComponent(name)}${v}/ready`);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  async #get(path: string): Promise<boolean> {
    try {
      const res = await this.#pool.request({ method: "GET", path, headersTimeout: 5_000, bodyTimeout: 5_000 });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  #post(path: string, query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }) {
    const enc = encodeCall(req, o.binary);
    const headers: Record<string, string> = {
      ...capabilityToHeaders(query),
      "content-type": enc.contentType,
      "x-anyserve-timeout-ms": String(Math.max(1, Math.round(o.timeout))),
      ...o.headers,
    };
    if (enc.headerLength !== undefined) headers[HEADER_INFERENCE_LENGTH] = String(enc.headerLength);
    const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeout + 1_000)]) : AbortSignal.timeout(o.timeout + 1_000);
    return this.#pool.request({ method: "POST", path, headers, body: enc.body, signal }).catch((err: unknown) => {
      throw transportError(err, o.timeout);
    });
  }
}

function transportError(err: unknown, timeout: number): AnyServeError {
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === "TimeoutError" || e.name === "AbortError") {
    return e.name === "TimeoutError"
      ? new AnyServeError("DEADLINE_EXCEEDED", `no answer within ${timeout} ms`)
      : new AnyServeError("CANCELLED", "the call was cancelled");
  }
  return new AnyServeError("REPLICA_UNREACHABLE", `cannot reach the server: ${e.code ?? ""} ${e.message ?? String(err)}`.trim());
}
