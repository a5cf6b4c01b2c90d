/**
 * The REST front end shared by the API server and the replica: the OIP v2 routes and the seed's
 * `/infer` routes. It reads only the path and headers of an inference request and hands the body
 * to the backend as bytes; the backend decides what to do with them.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { AnyServeError } from "../errors.js";
import { capabilityFromHeaders, normalizeCapability, type CapabilityMap } from "../protocol/capability.js";
import { formatOfContentType } from "../protocol/media-type.js";
import { HEADER_INFERENCE_LENGTH, type EncodedBody, type WireFormat } from "../protocol/types.js";
import type { Logger } from "../util/log.js";
import type { IncomingCall, InferBackend } from "../protocol/call.js";
import { AFFINITY_HEADER } from "../protocol/call.js";
import { collectBody, EMPTY, intHeader, requestIdOf, sendError, sendJson, type RequestHeaders, type RouteHandler } from "../util/http.js";
import { endAtEndOfTurn } from "./end-of-turn.js";
import { SseWriter } from "./sse.js";
import { Cancellation, type CancelSignal } from "../util/cancel.js";
import { closeReason } from "../util/write-guard.js";
import { type DataPlaneAuth, REPLICA_HEADER } from "../util/auth.js";

export interface RestOptions {
  backend: InferBackend;
  logger: Logger;
  serverName: string;
  version: string;
  /** Largest inference body accepted (bytes). */
  maxBodyBytes: number;
  /** Time a request gets when the caller sets none (ms), and the most it may ask for. */
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** The data plane's token check and who counts as a replica (see {@link CallLimits.auth}). */
  auth?: DataPlaneAuth | undefined;
  /** Extra routes by "METHOD /path" (control plane, health). */
  routes?: Record<string, RouteHandler>;
  /**
   * Told the code of every request refused before it reached the backend (malformed headers or
   * body, too large, unknown route, unauthenticated…): what the backend answered is counted there.
   */
  onRejected?: (code: string) => void;
}

const MODEL_ROUTE = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(?:\/(infer|ready|generate_stream))?$/;
const EXTENSIONS = ["binary_tensor_data", "capability_routing", "streaming"];

export class RestFrontend {
  readonly #o: RestOptions;
  readonly #routes = new Map<string, RouteHandler>();
  /** path → allowed methods, for 405 answers. */
  readonly #methods = new Map<string, string[]>();
  /** Errors the backend raised (counted by the backend's own metrics, not as rejections). */
  readonly #fromBackend = new WeakSet<object>();
  /** Routes registered as `METHOD /prefix/*` (management API paths with an id), tried after exact ones. */
  readonly #prefixed: { method: string; prefix: string; handler: RouteHandler }[] = [];

  constructor(options: RestOptions) {
    this.#o = options;
    const common: Record<string, RouteHandler> = {
      "GET /v2": (_q, res) => sendJson(res, 200, { name: options.serverName, version: options.version, extensions: EXTENSIONS }),
      "GET /v2/health/live": (_q, res) => sendJson(res, 200, { live: true }),
      "GET /v2/health/ready": (_q, res) => {
        const ready = options.backend.ready();
        sendJson(res, ready ? 200 : 503, { ready });
      },
      "POST /infer": (q, res) => this.#inferByHeaders(q, res, undefined, false),
      "POST /infer/json": (q, res) => this.#inferByHeaders(q, res, "json", false),
      "POST /infer/stream": (q, res) => this.#inferByHeaders(q, res, "json", true),
    };
    for (const [key, handler] of Object.entries({ ...common, ...options.routes })) {
      const space = key.indexOf(" ");
      if (key.endsWith("/*")) {
        this.#prefixed.push({ method: key.slice(0, space), prefix: key.slice(space + 1, -1), handler });
        continue;
      }
      this.#routes.set(key, handler);
      const path = key.slice(space + 1);
      const list = this.#methods.get(path) ?? [];
      list.push(key.slice(0, space));
      this.#methods.set(path, list);
    }
  }

  /** The node:http request listener. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    // Only the path is needed to route; a full URL parse per request is avoidable work on the
    // hot path (the one route that reads a query string parses it itself).
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    const handler = this.#routes.get(`${req.method} ${path}`);
    let done: unknown;
    try {
      if (handler) done = handler(req, res);
      else if (path.startsWith("/v2/models/")) done = this.#modelRoute(req, res, path);
      else done = this.#notFound(req, res, path);
    } catch (err) {
      this.#fail(res, err);
      return;
    }
    if (done instanceof Promise) done.catch((err: unknown) => this.#fail(res, err));
  };

  /** Answers `err`; one the backend raised (`fromBackend`, or marked so) is not counted as a rejection. */
  #fail(res: ServerResponse, err: unknown, fromBackend = false): void {
    const onRejected = this.#o.onRejected;
    if (onRejected && !fromBackend && !(typeof err === "object" && err !== null && this.#fromBackend.has(err))) {
      onRejected(AnyServeError.from(err, "INTERNAL").code);
    }
    sendError(res, err);
  }

  /** Marks an error as the backend's and rethrows it. */
  #backendFailed = (err: unknown): never => {
    if (typeof err === "object" && err !== null) this.#fromBackend.add(err);
    throw err;
  };

  #notFound(req: IncomingMessage, res: ServerResponse, path: string): unknown {
    const prefixed = this.#prefixed.filter((r) => path.startsWith(r.prefix) && path.length > r.prefix.length);
    const route = prefixed.find((r) => r.method === req.method);
    if (route) return route.handler(req, res);
    const allowed = prefixed.length > 0 ? prefixed.map((r) => r.method) : this.#methods.get(path);
    if (allowed) {
      const allow = allowed.join(", ");
      this.#o.onRejected?.("METHOD_NOT_ALLOWED");
      sendError(res, new AnyServeError("METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${path}: use ${allow}`), { allow });
      return;
    }
    throw new AnyServeError("ROUTE_NOT_FOUND", `no route ${req.method} ${path.slice(0, 200)}`);
  }

  #modelRoute(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> | void {
    const route = modelRouteOf(path);
    if (!route) return void this.#notFound(req, res, path);
    const { name, version, action } = route;
    const expected = action === "infer" || action === "generate_stream" ? "POST" : "GET";
    if (req.method !== expected) {
      this.#o.onRejected?.("METHOD_NOT_ALLOWED");
      sendError(res, new AnyServeError("METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${path.slice(0, 200)}: use ${expected}`), {
        allow: expected,
      });
      return;
    }
    const query = modelQuery(name, version);
    const model = { name, version };
    // Model metadata and readiness are the data plane's too (inference checks it in callFromHeaders).
    if (action !== "infer" && action !== "generate_stream") this.#o.auth?.check(req.headers.authorization, undefined);
    switch (action) {
      case "infer":
        return this.#infer(req, res, query, undefined, false, model);
      case "generate_stream":
        return this.#infer(req, res, query, "json", true, model);
      case "ready":
        return this.#o.backend
          .modelReady(query)
          .catch(this.#backendFailed)
          .then((ready) => {
            if (ready) sendJson(res, 200, { name, ready: true });
            else
              sendError(res, new AnyServeError("MODEL_NOT_FOUND", `model '${name}'${version ? ` version '${version}'` : ""} is not ready`));
          });
      default:
        return this.#o.backend
          .modelMetadata(query, name, version)
          .catch(this.#backendFailed)
          .then((meta) => sendJson(res, 200, meta));
    }
  }

  #inferByHeaders(req: IncomingMessage, res: ServerResponse, format: WireFormat | undefined, stream: boolean): void {
    this.#infer(req, res, headerQuery(req.headers), format, stream, undefined);
  }

  /**
   * Reads the body, hands the call to the backend, writes its answer. Callbacks and one `.then`
   * rather than an async function: each await is a promise and a microtask on a path that runs
   * once per request (the gateway's profile). Headers that are refused throw here, synchronously.
   */
  #infer(
    req: IncomingMessage,
    res: ServerResponse,
    query: CapabilityMap,
    forced: WireFormat | undefined,
    stream: boolean,
    model: IncomingCall["model"],
  ): void {
    const cancel = new Cancellation();
    const call = callFromHeaders(req.headers, query, forced, model, this.#o, cancel);
    collectBody(
      req,
      this.#o.maxBodyBytes,
      (body) => {
        call.body = body;
        // This runs in the request's 'end' listener: a throw here would not reach the listener's catch.
        try {
          this.#serve(call, res, stream, cancelOnClose(req.socket, cancel));
        } catch (err) {
          this.#fail(res, err);
        }
      },
      (err) => this.#fail(res, err),
    );
  }

  /** `untrack` ends the watch on the client's connection (see {@link cancelOnClose}). */
  #serve(call: IncomingCall, res: ServerResponse, stream: boolean, untrack: () => void): void {
    if (stream) {
      this.#stream(call, res)
        .finally(untrack)
        .catch((err: unknown) => this.#fail(res, err));
      return;
    }
    const served = performance.now();
    let answer: Promise<EncodedBody>;
    try {
      answer = this.#o.backend.infer(call);
    } catch (err) {
      untrack();
      this.#fail(res, err, true);
      return;
    }
    answer.then(
      (out) => {
        untrack();
        // Nothing awaits this callback: what it throws is answered here, not left unhandled.
        try {
          const headers: Record<string, string | number> = {
            "content-type": out.contentType,
            "content-length": out.body.length,
            "x-request-id": call.requestId,
          };
          if (out.headerLength !== undefined) headers[HEADER_INFERENCE_LENGTH] = out.headerLength;
          endAtEndOfTurn(res, 200, headers, out.body, performance.now() - served);
        } catch (err) {
          this.#fail(res, err);
        }
      },
      (err: unknown) => {
        untrack();
        this.#fail(res, err, true);
      },
    );
  }

  async #stream(call: IncomingCall, res: ServerResponse): Promise<void> {
    const sse = new SseWriter(res, call.requestId);
    try {
      // A full socket holds the next chunk back (the backend waits for the promise).
      await this.#o.backend.stream(call, (chunk) => (sse.data(chunk.body) ? undefined : sse.drained()));
      sse.end();
    } catch (err) {
      if (!sse.started) this.#backendFailed(err); // nothing sent yet: a plain HTTP error answer
      sse.error(AnyServeError.from(err));
    }
  }
}

/** Per socket: the cancellations of the calls in flight on it (one, unless pipelined). */
const inFlightBySocket = new WeakMap<Socket, Set<Cancellation>>();

/**
 * Cancels `cancel` if `socket` closes before the call is untracked — the client went away. One
 * 'close' listener per socket, not one per request: a keep-alive connection carries thousands of
 * calls, and adding and removing a listener per call showed in the profile. Returns the untrack
 * function, to call once the answer is ready (or failed).
 */
function cancelOnClose(socket: Socket, cancel: Cancellation): () => void {
  if (socket.destroyed) {
    cancel.abort(closeReason(socket));
    return () => undefined;
  }
  let calls = inFlightBySocket.get(socket);
  if (calls === undefined) {
    const set = new Set<Cancellation>();
    calls = set;
    inFlightBySocket.set(socket, set);
    socket.once("close", () => {
      // Why it closed: the client left, or the write guard cut a client that stopped reading.
      const reason = closeReason(socket);
      for (const c of set) c.abort(reason);
      set.clear();
    });
  }
  const set = calls;
  set.add(cancel);
  return () => {
    set.delete(cancel);
  };
}

export function modelQuery(name: string, version: string | undefined): CapabilityMap {
  return normalizeCapability(version === undefined ? { model: name } : { model: name, version }, "model");
}

function decodeSegment(raw: string, what: string): string {
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    throw new AnyServeError("INVALID_CAPABILITY", `${what} is not valid percent-encoding: ${JSON.stringify(raw.slice(0, 64))}`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (text.length === 0 || text.length > 256 || /[\u0000-\u001f/\\]/.test(text)) {
    throw new AnyServeError(
      "INVALID_CAPABILITY",
      `${what}: expected 1-256 characters without control characters or slashes, got ${JSON.stringify(text.slice(0, 64))}`,
    );
  }
  return text;
}

/** A `/v2/models/{name}[/versions/{v}][/{action}]` path, decoded; the action is "metadata" when none is named. */
export interface ModelRoute {
  name: string;
  version: string | undefined;
  action: string;
}

/** Reads a model route's path; undefined when it is not one. Throws INVALID_CAPABILITY for a malformed name or version. */
export function modelRouteOf(path: string): ModelRoute | undefined {
  const m = MODEL_ROUTE.exec(path);
  if (!m) return undefined;
  const name = decodeSegment(m[1]!, "model name");
  const version = m[2] === undefined ? undefined : decodeSegment(m[2], "model version");
  return { name, version, action: m[3] ?? "metadata" };
}

/** The query of a header-routed request (`POST /infer…`): its `X-Capability-*` headers, at least one. */
export function headerQuery(headers: RequestHeaders): CapabilityMap {
  const query = capabilityFromHeaders(headers);
  if (Object.keys(query).length === 0) {
    throw new AnyServeError(
      "MISSING_CAPABILITY",
      "no capability in the request: send X-Capability-<Key>: <value> headers (e.g. X-Capability-Type: chat)",
    );
  }
  return query;
}

/** The time an inference call gets when the caller sets none, and the most it may ask for (ms), and who may call. */
export interface CallLimits {
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /**
   * The inference token check, and which callers are replicas of the deployment (whose delegation
   * headers count). Without it the data plane is open and delegation headers are ignored.
   */
  auth?: DataPlaneAuth | undefined;
}

/** Delegation header values read at most (a longer `X-Delegated-From` is cut, never echoed whole). */
const MAX_TRIED = 16;

/**
 * An inference call as its request's headers describe it — content type and wire format, binary
 * header length, request id, timeout, delegation state, affinity key — with an empty body that the
 * caller sets once read. The REST front end and the fast ingress both build calls here, so they
 * read and refuse headers the same way. Throws AnyServeError (415, INVALID_HEADER).
 */
export function callFromHeaders(
  headers: RequestHeaders,
  query: CapabilityMap,
  forced: WireFormat | undefined,
  model: IncomingCall["model"],
  limits: CallLimits,
  signal: CancelSignal,
): IncomingCall {
  const raw = headers["content-type"];
  const contentType = Array.isArray(raw) ? raw[0] : raw;
  const format = forced ?? formatOfContentType(contentType);
  if (forced === "json" && contentType !== undefined && formatOfContentType(contentType) !== "json") {
    throw new AnyServeError(
      "UNSUPPORTED_MEDIA_TYPE",
      `Content-Type '${contentType.slice(0, 64)}' is not accepted here: expected application/json`,
    );
  }
  const fromReplica = limits.auth?.check(headers.authorization, headers[REPLICA_HEADER]) ?? false;
  const call: IncomingCall = {
    query,
    body: EMPTY,
    contentType,
    headerLength: intHeader(headers, HEADER_INFERENCE_LENGTH),
    format,
    timeoutMs: Math.min(intHeader(headers, "x-anyserve-timeout-ms") ?? limits.defaultTimeoutMs, limits.maxTimeoutMs),
    requestId: requestIdOf(headers),
    signal,
    model,
  };
  // Delegation: `X-Delegated-From` (comma-separated replica ids tried) and `X-Delegation-Depth`,
  // only from a replica of this deployment: from anyone else they would steer routing.
  const from = headers["x-delegated-from"];
  if (fromReplica && (from !== undefined || headers["x-delegation-depth"] !== undefined)) {
    call.tried = typeof from === "string" ? triedIds(from) : [];
    call.depth = intHeader(headers, "x-delegation-depth", 64) ?? (call.tried.length > 0 ? 1 : 0);
  }
  const affinity = headers[AFFINITY_HEADER];
  if (typeof affinity === "string") call.affinityKey = affinity.slice(0, 256);
  return call;
}

/** The replica ids of an `X-Delegated-From` value: at most {@link MAX_TRIED}, each a valid id (others dropped). */
function triedIds(value: string): string[] {
  const ids: string[] = [];
  for (const part of value.slice(0, MAX_TRIED * 130).split(",")) {
    const id = part.trim();
    if (/^[\w.-]{1,128}$/.test(id)) ids.push(id);
    if (ids.length === MAX_TRIED) break;
  }
  return ids;
}
