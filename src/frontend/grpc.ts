/**
 * The gRPC front end (`inference.GRPCInferenceService`) shared by the API server and the replica.
 * `ModelInfer` and `ModelStreamInfer` keep messages as raw bytes (identity (de)serialisers): the
 * gateway reads only `model_name`/`model_version` from the request and forwards the rest, and
 * the replica's dispatcher decodes it once. The small health/metadata RPCs use protobufjs.
 */
import * as grpc from "@grpc/grpc-js";
import { AnyServeError } from "../errors.js";
import { normalizeCapability, type CapabilityMap } from "../protocol/capability.js";
import { serviceDefinition } from "../protocol/grpc-service.js";
import { readModelName, walkFields } from "../protocol/proto-scan.js";
import { CONTENT_TYPE_PROTOBUF } from "../protocol/types.js";
import { newRequestId } from "../util/http.js";
import type { IncomingCall, InferBackend } from "../protocol/call.js";
import { AFFINITY_HEADER } from "../protocol/call.js";
import type { Logger } from "../util/log.js";
import { Cancellation } from "../util/cancel.js";
import { stallError } from "../util/write-guard.js";
import http2 from "node:http2";
import { type DataPlaneAuth, REPLICA_HEADER } from "../util/auth.js";
import type { ServerTls } from "../util/tls.js";
import type { BodyBudget } from "../util/body-budget.js";

export interface GrpcOptions {
  backend: InferBackend;
  logger: Logger;
  maxBodyBytes: number;
  /**
   * Request bodies held at once over all requests (the API server's, shared with REST): a message
   * is counted from when grpc-js hands it over until its answer, refused with RESOURCE_EXHAUSTED
   * `SERVER_OVERLOADED` past it. (grpc-js reads each message whole before that.)
   */
  bodyBudget?: BodyBudget | undefined;
  defaultTimeoutMs: number;
  serverName: string;
  version: string;
  /** Told the code of every inference call refused before it reached the backend (malformed message, no capability…), as the REST front end's `onRejected`. */
  onRejected?: (code: string) => void;
  /**
   * A stream whose client takes none of its messages for this long (ms) is cut: the call is
   * cancelled (the handler's signal fires) and its HTTP/2 stream reset. Default 30 s.
   */
  writeTimeoutMs?: number;
  /** The inference token check (metadata `authorization`) and who counts as a replica, as the REST front end's. */
  auth?: DataPlaneAuth | undefined;
  /** Serve TLS with this certificate and key; without it the port is plaintext (h2c). */
  tls?: ServerTls | undefined;
}

export class GrpcFrontend {
  readonly #o: GrpcOptions;
  readonly #server: grpc.Server;

  constructor(options: GrpcOptions) {
    this.#o = options;
    this.#server = new grpc.Server({
      "grpc.max_receive_message_length": options.maxBodyBytes,
      "grpc.max_send_message_length": options.maxBodyBytes,
    });
    const b = options.backend;
    const unary =
      <Q, R>(fn: (req: Q, call: grpc.ServerUnaryCall<Q, R>) => Promise<R> | R) =>
      (call: grpc.ServerUnaryCall<Q, R>, cb: grpc.sendUnaryData<R>): void => {
        Promise.resolve()
          .then(() => {
            if (call.request instanceof Undecodable) throw call.request.error;
            return fn(call.request, call);
          })
          .then(
            (r) => cb(null, r),
            (err: unknown) => cb(toServiceError(err)),
          );
      };
    this.#server.addService(serverDefinition(), {
      ServerLive: unary(() => ({ live: true })),
      ServerReady: unary(() => ({ ready: b.ready() })),
      ModelReady: unary(async (req: { name: string; version: string }, call) => {
        this.#caller(call.metadata);
        return { ready: await b.modelReady(modelCapability(req.name, req.version, {})) };
      }),
      ServerMetadata: unary(() => ({
        name: options.serverName,
        version: options.version,
        extensions: ["binary_tensor_data", "capability_routing", "streaming"],
      })),
      ModelMetadata: unary(async (req: { name: string; version: string }, call) => {
        this.#caller(call.metadata);
        return b.modelMetadata(modelCapability(req.name, req.version, {}), req.name, req.version || undefined);
      }),
      ModelInfer: unary((body: Buffer, call) =>
        this.#holding(body, () => b.infer(this.#accept(body, call, new Cancellation()))).then((out) => out.body),
      ),
      ModelStreamInfer: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => this.#streamInfer(call),
    } as unknown as grpc.UntypedServiceImplementation);
  }

  /** Binds and starts; returns the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const tls = this.#o.tls;
      const credentials = tls
        ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false)
        : grpc.ServerCredentials.createInsecure();
      this.#server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${port}`, credentials, (err, bound) =>
        err ? reject(err) : resolve(bound),
      );
    });
  }

  /** Stops taking calls; in-flight ones get `graceMs` to finish. */
  close(graceMs = 5_000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Runs `serve` with `body` counted in the body budget until it settles; SERVER_OVERLOADED when it does not fit. */
  #holding<T>(body: Buffer, serve: () => Promise<T>): Promise<T> {
    const hold = this.#o.bodyBudget?.hold();
    if (hold === undefined) return serve();
    if (!hold.take(body.length)) {
      this.#o.onRejected?.("SERVER_OVERLOADED");
      return Promise.reject(hold.overloaded(body.length));
    }
    try {
      return serve().finally(() => hold.release());
    } catch (err) {
      hold.release();
      return Promise.reject(err);
    }
  }

  /** {@link #call}, counting a refusal (a throw before the backend is reached) with `onRejected`. */
  #accept(
    body: Buffer,
    call: grpc.ServerUnaryCall<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>,
    cancel: Cancellation,
  ): IncomingCall {
    try {
      return this.#call(body, call, cancel);
    } catch (err) {
      this.#o.onRejected?.(AnyServeError.from(err, "INVALID_REQUEST").code);
      throw err;
    }
  }

  #call(
    body: Buffer,
    call: grpc.ServerUnaryCall<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>,
    cancel: Cancellation,
  ): IncomingCall {
    const fromReplica = this.#caller(call.metadata);
    const { modelName, modelVersion } = readModelName(body);
    call.on("cancelled", () => cancel.abort(new AnyServeError("CANCELLED", "the client cancelled the call")));
    const deadline = call.getDeadline();
    const remaining = deadline instanceof Date ? deadline.getTime() - Date.now() : Number(deadline) - Date.now();
    const timeoutMs = Number.isFinite(remaining) ? Math.max(0, remaining) : this.#o.defaultTimeoutMs;
    const query = modelCapability(modelName, modelVersion, call.metadata.getMap());
    const incoming: IncomingCall = {
      query,
      body,
      contentType: CONTENT_TYPE_PROTOBUF,
      format: "protobuf",
      timeoutMs,
      requestId: newRequestId(),
      signal: cancel,
      // Delegation metadata steers routing: only a replica of the deployment may send it.
      ...(fromReplica ? delegationOf(call.metadata) : {}),
    };
    if (modelName) incoming.model = { name: modelName, version: modelVersion || undefined };
    const affinity = call.metadata.get(AFFINITY_HEADER)[0];
    if (typeof affinity === "string") incoming.affinityKey = affinity.slice(0, 256);
    return incoming;
  }

  /** Checks the caller's credentials (`authorization` metadata); true when it is a replica of the deployment. */
  #caller(md: grpc.Metadata): boolean {
    const auth = this.#o.auth;
    if (auth === undefined) return false;
    const text = (key: string): string | undefined => {
      const v = md.get(key)[0];
      return typeof v === "string" ? v : undefined;
    };
    return auth.check(text("authorization"), text(REPLICA_HEADER));
  }

  #streamInfer(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    const cancel = new Cancellation();
    let pending = 0;
    let inputEnded = false;
    const maybeEnd = (): void => {
      if (inputEnded && pending === 0) call.end();
    };
    // A full call (the client is not reading) holds the next chunk back: the backend waits.
    const sink = (chunk: { body: Buffer }): void | Promise<void> =>
      call.write(wrapStreamResponse(chunk.body)) ? undefined : this.#drained(call, cancel);
    call.on("data", (body: Buffer) => {
      pending++;
      Promise.resolve()
        .then(() => this.#holding(body, () => this.#o.backend.stream(this.#accept(body, call, cancel), sink)))
        .catch((err: unknown) => {
          if (!cancel.aborted) call.write(wrapStreamError(AnyServeError.from(err, "INTERNAL")));
        })
        .finally(() => {
          pending--;
          maybeEnd();
        });
    });
    call.on("end", () => {
      inputEnded = true;
      maybeEnd();
    });
    call.on("error", () => cancel.abort(new AnyServeError("CANCELLED", "the client's stream failed")));
  }

  /**
   * Settles when `call` can take more (drain), or when the call ended. A client that takes nothing
   * for `writeTimeoutMs` is cut: the call is cancelled and its HTTP/2 stream reset, so what it
   * buffered is dropped.
   */
  #drained(call: grpc.ServerDuplexStream<Buffer, Buffer>, cancel: Cancellation): Promise<void> {
    if (cancel.aborted || call.destroyed) return Promise.resolve();
    const timeoutMs = this.#o.writeTimeoutMs ?? 30_000;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        call.off("drain", done);
        call.off("close", done);
        cancel.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(() => {
        cancel.abort(stallError(timeoutMs));
        resetStream(call);
        done();
      }, timeoutMs);
      call.on("drain", done);
      call.on("close", done);
      cancel.addEventListener("abort", done);
    });
  }
}

/**
 * Resets the HTTP/2 stream under a server call (RST_STREAM CANCEL): what grpc-js and HTTP/2 hold
 * for a client that does not read is dropped, and the client sees the call cancelled. grpc-js has
 * no public way to do it (a status waits behind the unread messages), so this walks its call chain
 * to the stream; if a later grpc-js hides it, the call is only cancelled (bounded: a stream waits
 * for drain, so at most one window of messages stays until the client goes).
 */
function resetStream(call: unknown): void {
  let c = (call as { call?: unknown }).call as { stream?: unknown; nextCall?: unknown } | undefined;
  for (let hops = 0; c !== undefined && c !== null && hops < 8; hops++) {
    const s = c.stream as { close?: (code: number) => void; rstCode?: unknown } | undefined;
    if (s !== undefined && typeof s.close === "function" && "rstCode" in s) {
      s.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    c = c.nextCall as typeof c;
  }
}

/** A request message the server could not decode: its handler answers `error`, with our code. */
class Undecodable {
  constructor(readonly error: AnyServeError) {}
}

/**
 * The service definition as this server reads requests. The small RPCs' requests are read here
 * rather than by protobufjs in grpc-js, whose failure is an INTERNAL "Error deserializing request"
 * without our code: a bad message becomes {@link Undecodable} and is answered INVALID_ARGUMENT
 * `INVALID_PROTOBUF` (or `INVALID_CAPABILITY` for a model name that is not UTF-8), as ModelInfer's
 * are. The health requests have no fields (only the framing is checked); the model ones have
 * `name` and `version` where ModelInferRequest has `model_name` and `model_version`.
 */
function serverDefinition(): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...serviceDefinition() };
  const empty = (what: string) => (b: Buffer) => {
    walkFields(b, undefined, what);
    return {};
  };
  const named = (what: string) => (b: Buffer) => {
    const { modelName, modelVersion } = readModelName(b, what);
    return { name: modelName, version: modelVersion };
  };
  const readers: Record<string, (b: Buffer) => object> = {
    ServerLive: empty("ServerLiveRequest"),
    ServerReady: empty("ServerReadyRequest"),
    ServerMetadata: empty("ServerMetadataRequest"),
    ModelReady: named("ModelReadyRequest"),
    ModelMetadata: named("ModelMetadataRequest"),
  };
  for (const [method, read] of Object.entries(readers)) {
    def[method] = {
      ...def[method]!,
      requestDeserialize: (b: Buffer) => {
        try {
          return read(b);
        } catch (err) {
          return new Undecodable(AnyServeError.from(err, "INVALID_PROTOBUF"));
        }
      },
    };
  }
  return def;
}

const CAPABILITY_METADATA = "x-capability-";

/** The capability of a gRPC call: `model_name` (and version) plus `x-capability-*` metadata. */
function modelCapability(name: string, version: string, metadata: Record<string, unknown>): CapabilityMap {
  const cap: Record<string, string> = {};
  for (const key in metadata) {
    if (!key.startsWith(CAPABILITY_METADATA)) continue;
    // gRPC carries `-bin` keys as bytes: a capability value is text, and the key would gain "_bin".
    if (key.endsWith("-bin")) {
      throw new AnyServeError(
        "INVALID_CAPABILITY",
        `metadata '${key.slice(0, 128)}': a capability value is text, not binary (-bin) metadata; send '${key.slice(0, -4).slice(0, 128)}'`,
      );
    }
    cap[key.slice(CAPABILITY_METADATA.length).replace(/-/g, "_")] = String(metadata[key]);
  }
  if (name) cap.model = name;
  if (version) cap.version = version;
  if (Object.keys(cap).length === 0) {
    throw new AnyServeError("MISSING_CAPABILITY", "no capability in the call: set model_name or x-capability-<key> metadata");
  }
  return normalizeCapability(cap, "gRPC capability");
}

function delegationOf(md: grpc.Metadata): { depth?: number; tried?: string[] } {
  const from = md.get("x-delegated-from")[0];
  const depth = md.get("x-delegation-depth")[0];
  if (from === undefined && depth === undefined) return {};
  const tried =
    typeof from === "string"
      ? from
          .slice(0, 16 * 130)
          .split(",")
          .map((s) => s.trim())
          .filter((s) => /^[\w.-]{1,128}$/.test(s))
          .slice(0, 16)
      : [];
  const d = Number(depth ?? (tried.length > 0 ? 1 : 0));
  return { depth: Number.isInteger(d) && d >= 0 ? d : 0, tried };
}

/** A gRPC error with the catalogue status and our code in trailing metadata (`x-anyserve-code`). */
export function toServiceError(err: unknown): grpc.ServiceError {
  const e = AnyServeError.from(err, "INTERNAL");
  const metadata = new grpc.Metadata();
  metadata.set("x-anyserve-code", e.code);
  return Object.assign(new Error(e.message), { code: e.grpcStatus, details: e.message, metadata }) as grpc.ServiceError;
}

/** `ModelStreamInferResponse { infer_response = 2 }` around an already-encoded ModelInferResponse. */
function wrapStreamResponse(inferResponse: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x12]), varint(inferResponse.length), inferResponse]);
}

/** `ModelStreamInferResponse { error_message = 1 }`, prefixed with our code so clients can rebuild it. */
function wrapStreamError(err: AnyServeError): Buffer {
  const text = Buffer.from(`[${err.code}] ${err.message}`);
  return Buffer.concat([Buffer.from([0x0a]), varint(text.length), text]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
