/**
 * The REST front end shared by the API server and the replica: the OIP v2 routes and the seed's
 * `/infer` routes. It reads only the path and headers of an inference request and hands the body
 * to the backend as bytes; the backend decides what to do with them.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { AnyServeError } from "../errors.js";
import type { CapabilityMap } from "../protocol/capability.js";
import { HEADER_INFERENCE_LENGTH, type EncodedBody, type WireFormat } from "../protocol/types.js";
import type { Logger } from "../util/log.js";
import type { IncomingCall, InferBackend } from "../protocol/call.js";
import { sendError, sendJson, type RouteHandler } from "../util/http.js";
import { collectBody } from "../util/request-body.js";
import { endAtEndOfTurn } from "./end-of-turn.js";
import { SseWriter } from "./sse.js";
import { Cancellation } from "../util/cancel.js";
import { closeReason } from "../util/write-guard.js";
import type { DataPlaneAuth } from "../util/auth.js";
import { callFromHeaders, headerQuery, modelQuery, modelRouteOf } from "./call-head.js";
import type { BodyBudget } from "../util/body-budget.js";

export interface RestOptions {
  backend: InferBackend;
  logger: Logger;
  serverName: string;
  version: string;
  /** Largest inference body accepted (bytes). */
  maxBodyBytes: number;
  /** Request bodies held at once over all requests (the API server's; a replica's port has none). */
  bodyBudget?: BodyBudget | undefined;
  /** Time a request gets when the caller sets none (ms), and the most it may ask for. */
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** The data plane's token check and who counts as a replica (see call-head.ts's `CallLimits.auth`). */
  auth?: DataPlaneAuth | undefined;
  /** Extra routes by "METHOD /path" (control plane, health). */
  routes?: Record<string, RouteHandler>;
  /**
   * Told the code of every request refused before it reached the backend (malformed headers or
   * body, too large, unknown route, unauthenticated…): what the backend answered is counted there.
   */
  onRejected?: (code: string) => void;
}

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
    const hold = this.#o.bodyBudget?.hold();
    // The body's bytes are held until the answer is done (a retry on another replica sends it again).
    if (hold !== undefined) res.once("close", () => hold.release());
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
      hold,
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
