/**
 * The error catalogue: every error anyserve answers with has a stable code here, with its HTTP
 * status, its gRPC status and whether a caller may retry it. `docs/errors.md` documents each one;
 * a test keeps the two in step. Retired codes are never reused.
 *
 * Errors cross threads, processes and hops as plain objects ({@link WireError}) and are rebuilt
 * with {@link AnyServeError.fromWire}, so a handler's error reaches the client with its code and
 * message through every hop.
 *
 * @example
 * ```ts
 * import { AnyServeError } from "anyserve";
 * throw new AnyServeError("INVALID_TENSOR", "input 'x': expected 6 FP32 elements for shape [2,3], got 5");
 * ```
 */

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

interface CatalogueEntry {
  readonly http: number;
  readonly grpc: number;
  readonly retryable: boolean;
  /** One line for docs/errors.md: when this error is raised. */
  readonly when: string;
}

const G = GrpcStatus;

/** Every error code anyserve emits. Keys are the codes. */
export const ERROR_CATALOGUE = {
  // ── request shape ──────────────────────────────────────────────────────────
  INVALID_JSON: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "the body is not valid JSON (truncated, empty, too deeply nested, or with prototype keys)",
  },
  INVALID_PROTOBUF: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "the body is not a valid protobuf ModelInferRequest (or a gRPC call's request message does not decode, on any method)",
  },
  UNSUPPORTED_MEDIA_TYPE: {
    http: 415,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "the Content-Type (or Content-Encoding) is not one the route accepts",
  },
  PAYLOAD_TOO_LARGE: {
    http: 413,
    grpc: G.RESOURCE_EXHAUSTED,
    retryable: false,
    when: "the body is over the route's size limit (checked while streaming, before it is all read)",
  },
  INVALID_REQUEST: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "the inference request has a wrong shape: missing or empty inputs, bad id, bad parameters",
  },
  INVALID_TENSOR: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "a tensor's datatype, shape, data or byte size is wrong; the message names the tensor, the expected and the actual value",
  },
  INVALID_PARAMETER: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "a request parameter has a wrong type or an out-of-range value (e.g. timeout)",
  },
  MISSING_CAPABILITY: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "a routed request names no capability (no X-Capability-* header, no model name)",
  },
  INVALID_CAPABILITY: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "a capability key or value is malformed (empty key, non-string value, too long, too many keys)",
  },
  INVALID_HEADER: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "a request header anyserve reads has a bad value (e.g. Inference-Header-Content-Length)",
  },
  MALFORMED_HTTP: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "the bytes are not a valid HTTP/1.1 request (request line, header syntax, Content-Length or chunked framing, no Host on HTTP/1.1, cut short); the connection closes",
  },
  HEADERS_TOO_LARGE: {
    http: 431,
    grpc: G.RESOURCE_EXHAUSTED,
    retryable: false,
    when: "the request's headers are over 16 KiB; the connection closes",
  },
  REQUEST_TIMEOUT: {
    http: 408,
    grpc: G.DEADLINE_EXCEEDED,
    retryable: true,
    when: "the request's headers or body did not arrive in time (ANYSERVE_HEADERS_TIMEOUT_MS, ANYSERVE_REQUEST_TIMEOUT_MS); the connection closes",
  },
  EXPECTATION_FAILED: {
    http: 417,
    grpc: G.FAILED_PRECONDITION,
    retryable: false,
    when: "an Expect header other than 100-continue; the connection closes",
  },
  // ── routing ────────────────────────────────────────────────────────────────
  ROUTE_NOT_FOUND: { http: 404, grpc: G.UNIMPLEMENTED, retryable: false, when: "no HTTP route or gRPC method with this path" },
  METHOD_NOT_ALLOWED: {
    http: 405,
    grpc: G.UNIMPLEMENTED,
    retryable: false,
    when: "the route exists but not for this HTTP method (the Allow header lists the methods)",
  },
  NO_MATCHING_CAPABILITY: {
    http: 404,
    grpc: G.NOT_FOUND,
    retryable: false,
    when: "no registered replica (or handler) has a capability matching the query; the message lists what is registered",
  },
  MODEL_NOT_FOUND: { http: 404, grpc: G.NOT_FOUND, retryable: false, when: "an OIP model route names a model (and version) nobody serves" },
  NO_READY_REPLICA: {
    http: 503,
    grpc: G.UNAVAILABLE,
    retryable: true,
    when: "replicas match, but none is available (draining, unhealthy, ejected, circuit open); the message says why for each; Retry-After is set",
  },
  REGISTRY_WARMING_UP: {
    http: 503,
    grpc: G.UNAVAILABLE,
    retryable: true,
    when: "nothing matches yet, but the API server started less than `api_server.warmup` ago and replicas are still registering (after a restart); Retry-After is set; afterwards the same request is 404",
  },
  DELEGATION_EXHAUSTED: {
    http: 508,
    grpc: G.NOT_FOUND,
    retryable: false,
    when: "a delegated request went past the delegation depth limit while replicas serve it (every one tried); the message names the capability and the replicas tried. A capability nobody serves is 404, however it was delegated",
  },
  // ── replica and worker ─────────────────────────────────────────────────────
  REPLICA_UNREACHABLE: {
    http: 502,
    grpc: G.UNAVAILABLE,
    retryable: true,
    when: "the gateway could not deliver the request to the chosen replica (connect refused, reset before any answer)",
  },
  UPSTREAM_PROTOCOL_ERROR: {
    http: 502,
    grpc: G.INTERNAL,
    retryable: false,
    when: "a replica answered with a frame or body the gateway cannot read",
  },
  QUEUE_FULL: { http: 503, grpc: G.UNAVAILABLE, retryable: true, when: "the capability's bounded queue is full; Retry-After is set" },
  SERVER_OVERLOADED: {
    http: 503,
    grpc: G.RESOURCE_EXHAUSTED,
    retryable: true,
    when: "the server already holds its budget of request bodies, all requests together (API server: `api_server.max_buffered_mb`; replica: `performance.max_buffered_mb`); the body was not read (or, arrived whole, was dropped); Retry-After is set",
  },
  SHUTTING_DOWN: { http: 503, grpc: G.UNAVAILABLE, retryable: true, when: "the replica or server is draining and takes no new requests" },
  DEADLINE_EXCEEDED: {
    http: 504,
    grpc: G.DEADLINE_EXCEEDED,
    retryable: false,
    when: "the request's deadline passed before an answer; the handler's AbortSignal fired",
  },
  CANCELLED: { http: 499, grpc: G.CANCELLED, retryable: false, when: "the client went away or cancelled; the handler's AbortSignal fired" },
  WORKER_ERROR: { http: 500, grpc: G.INTERNAL, retryable: false, when: "the handler threw; the message is the handler's own" },
  WORKER_CRASHED: {
    http: 502,
    grpc: G.INTERNAL,
    retryable: false,
    when: "the worker running the request died; only its own requests fail and it is replaced",
  },
  WORKER_OUT_OF_MEMORY: {
    http: 500,
    grpc: G.RESOURCE_EXHAUSTED,
    retryable: false,
    when: "the worker running the request went over its memory limit (memory_mb); only its own requests fail and it is replaced",
  },
  CAPABILITY_FAILED: {
    http: 503,
    grpc: G.UNAVAILABLE,
    retryable: true,
    when: "the capability's workers failed to start (onStart threw, the app did not load) more than the retry cap; the message gives the reason; Retry-After is set",
  },
  NOT_STREAMING: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "a streaming route was called for a handler that does not stream (or the reverse)",
  },
  // ── control plane ──────────────────────────────────────────────────────────
  INVALID_REGISTRATION: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "a /register body is missing a field or has a bad one; the message names the field's path",
  },
  REPLICA_NOT_FOUND: {
    http: 404,
    grpc: G.NOT_FOUND,
    retryable: false,
    when: "unregister, heartbeat or a management action for a replica id the registry does not hold",
  },
  SERVICE_NOT_FOUND: {
    http: 404,
    grpc: G.NOT_FOUND,
    retryable: false,
    when: "a management route or `anyserve status` names a service that is neither deployed nor registered; the message lists the known ones",
  },
  URL_NOT_ALLOWED: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "a registered endpoint is not an http(s) host:port the gateway may call",
  },
  UNAUTHENTICATED: {
    http: 401,
    grpc: G.UNAUTHENTICATED,
    retryable: false,
    when: "a route that needs a token (control, read or inference: docs/security.md) was called without it, or with a wrong one; the answer carries WWW-Authenticate",
  },
  PERMISSION_DENIED: {
    http: 403,
    grpc: G.PERMISSION_DENIED,
    retryable: false,
    when: "the token is valid but for another scope: the read token on a control-plane route",
  },
  REPLICA_ID_TAKEN: {
    http: 409,
    grpc: G.ALREADY_EXISTS,
    retryable: false,
    when: "a registration names a live replica id without that replica's secret (nor the control-plane token); the message names the id",
  },
  REGISTRATION_RATE_LIMITED: {
    http: 429,
    grpc: G.RESOURCE_EXHAUSTED,
    retryable: true,
    when: "new replica ids arrive faster than api_server.registration_rate allows; Retry-After is set",
  },
  REGISTRY_FULL: {
    http: 507,
    grpc: G.RESOURCE_EXHAUSTED,
    retryable: false,
    when: "the registry holds api_server.max_replicas replicas: a new id is refused until one leaves",
  },
  // ── objects ────────────────────────────────────────────────────────────────
  OBJECT_REF_INVALID: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "an object ref or id is malformed or names something outside the store (traversal, absolute path, NUL, planted symlink, untrusted owner URL)",
  },
  OBJECT_NOT_FOUND: {
    http: 404,
    grpc: G.NOT_FOUND,
    retryable: false,
    when: "no object with this id in the store (nor at its owner replica)",
  },
  OBJECT_EXPIRED: {
    http: 410,
    grpc: G.NOT_FOUND,
    retryable: false,
    when: "the object's TTL has passed; it is removed by the next sweep, after which it is OBJECT_NOT_FOUND",
  },
  OBJECT_TOO_LARGE: {
    http: 413,
    grpc: G.RESOURCE_EXHAUSTED,
    retryable: false,
    when: "the object is over the per-object size limit (checked while it is written; nothing is kept)",
  },
  OBJECT_RANGE_INVALID: {
    http: 416,
    grpc: G.OUT_OF_RANGE,
    retryable: false,
    when: "a byte range of an object (a Range header on the object endpoint, a range read) is malformed, multi-range, or outside the object",
  },
  OBJECT_STORE_FULL: {
    http: 507,
    grpc: G.RESOURCE_EXHAUSTED,
    retryable: false,
    when: "the store's total-size cap (or the disk) is full; nothing is kept",
  },
  OBJECT_OWNER_UNREACHABLE: {
    http: 502,
    grpc: G.UNAVAILABLE,
    retryable: true,
    when: "fetching an object from its owner replica failed (connection, refused token, truncated body)",
  },
  // ── deployment ─────────────────────────────────────────────────────────────
  CONFIG_INVALID: {
    http: 400,
    grpc: G.INVALID_ARGUMENT,
    retryable: false,
    when: "a deployment file or management request is invalid; every failing field is listed with its path, the bad value and what is allowed",
  },
  DEPLOYMENT_DOES_NOT_FIT: {
    http: 409,
    grpc: G.FAILED_PRECONDITION,
    retryable: false,
    when: "the deployment needs more CPU, memory or GPUs than the node has; nothing was changed",
  },
  NO_CONTROLLER: {
    http: 501,
    grpc: G.UNIMPLEMENTED,
    retryable: false,
    when: "a management action that needs a deployment controller (scale, apply) reached an API server that runs none (`anyserve api-server` started by hand): run the deployment with `anyserve up`, or on Kubernetes (`anyserve k8s apply`), or start and stop replicas yourself",
  },
  CONTROLLER_UNAVAILABLE: {
    http: 502,
    grpc: G.UNAVAILABLE,
    retryable: true,
    when: "the deployment's controller (the Kubernetes API, for an API server in a cluster) could not be reached or refused the change; its answer is quoted; nothing was changed",
  },
  // ── anything else ──────────────────────────────────────────────────────────
  INTERNAL: { http: 500, grpc: G.INTERNAL, retryable: false, when: "a bug in anyserve; the message says where" },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** An error as it travels between threads, processes and hops. */
export interface WireError {
  code: ErrorCode;
  message: string;
  data?: Record<string, unknown>;
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_CATALOGUE, code);
}

/** The one error class anyserve throws. `code` is stable; the status mappings come from the catalogue. */
export class AnyServeError extends Error {
  readonly code: ErrorCode;
  readonly data?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, data?: Record<string, unknown>) {
    super(message);
    this.name = "AnyServeError";
    this.code = code;
    if (data !== undefined) this.data = data;
  }

  get httpStatus(): number {
    return ERROR_CATALOGUE[this.code].http;
  }

  get grpcStatus(): number {
    return ERROR_CATALOGUE[this.code].grpc;
  }

  get retryable(): boolean {
    return ERROR_CATALOGUE[this.code].retryable;
  }

  toWire(): WireError {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }

  /** The REST body, as KServe has it plus our code: `{"error": msg, "code": CODE}`. */
  toJSON(): { error: string; code: ErrorCode } {
    return { error: this.message, code: this.code };
  }

  static fromWire(w: WireError): AnyServeError {
    return new AnyServeError(isErrorCode(w.code) ? w.code : "INTERNAL", String(w.message), w.data);
  }

  /**
   * Turns anything thrown into an AnyServeError. A plain Error from user code becomes
   * WORKER_ERROR with the user's message; an error carrying a known `code` keeps it.
   */
  static from(err: unknown, fallback: ErrorCode = "WORKER_ERROR"): AnyServeError {
    if (err instanceof AnyServeError) return err;
    if (err && typeof err === "object") {
      const e = err as { code?: unknown; message?: unknown; name?: unknown };
      const message = typeof e.message === "string" ? e.message : String(err);
      if (isErrorCode(e.code)) return new AnyServeError(e.code, message);
      if (e.name === "AbortError") return new AnyServeError("CANCELLED", message);
      return new AnyServeError(fallback, message);
    }
    return new AnyServeError(fallback, String(err));
  }
}

/** Maps an HTTP status from a peer that sent no code to our nearest code. */
export function codeForHttpStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return "INVALID_REQUEST";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NO_MATCHING_CAPABILITY";
    case 405:
      return "METHOD_NOT_ALLOWED";
    case 413:
      return "PAYLOAD_TOO_LARGE";
    case 415:
      return "UNSUPPORTED_MEDIA_TYPE";
    case 499:
      return "CANCELLED";
    case 502:
      return "REPLICA_UNREACHABLE";
    case 503:
      return "NO_READY_REPLICA";
    case 504:
      return "DEADLINE_EXCEEDED";
    case 508:
      return "DELEGATION_EXHAUSTED";
    default:
      return status >= 500 ? "INTERNAL" : "INVALID_REQUEST";
  }
}

/** Maps a gRPC status from a peer that sent no code to our nearest code. */
export function codeForGrpcStatus(status: number): ErrorCode {
  switch (status) {
    case G.INVALID_ARGUMENT:
      return "INVALID_REQUEST";
    case G.DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case G.NOT_FOUND:
      return "NO_MATCHING_CAPABILITY";
    case G.CANCELLED:
      return "CANCELLED";
    case G.RESOURCE_EXHAUSTED:
      return "PAYLOAD_TOO_LARGE";
    case G.UNAVAILABLE:
      return "REPLICA_UNREACHABLE";
    case G.UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case G.PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case G.UNIMPLEMENTED:
      return "ROUTE_NOT_FOUND";
    default:
      return "INTERNAL";
  }
}
