/**
 * The user's app: a set of handlers, each registered under a capability.
 *
 * @example
 * ```ts
 * import { AnyServe } from "anyserve";
 * export const app = new AnyServe();
 * app.capability({ type: "chat", model: "demo" }, (req) => `echo: ${req.value("text")}`);
 * app.model("embedder", (req) => new Float32Array([0.1, 0.2]));
 * app.capability({ type: "tokens" }, async function* (req) { yield "a"; yield "b"; });
 * ```
 */
import { matches, normalizeCapability, type CapabilityInput, type CapabilityMap } from "../protocol/capability.js";
import type { Datatype, Parameters } from "../protocol/types.js";
import type { Context } from "./context.js";
import type { InferenceRequest } from "./request.js";
import { checkTensorSpecs } from "./metadata.js";

/** A handler: plain value (or full OIP response) out, sync or async. */
export type Handler = (request: InferenceRequest, ctx: Context) => unknown;

/**
 * A batch handler (`{batch: true}`): one call for up to `batch_size` requests, one context per
 * request. It returns an array of the same length; an `Error` in a slot fails only that request,
 * a throw fails them all.
 */
export type BatchHandler = (requests: InferenceRequest[], contexts: Context[]) => unknown[] | Promise<unknown[]>;

/** What a lifecycle hook learns about the worker it runs in. */
export interface WorkerInfo {
  /** The capability whose workers start or stop. */
  capability: CapabilityMap;
  replicaId: string;
  /** `main` (single/async), `thread-N` (multi/pool) or `process-N` (process). */
  worker: string;
}

/** `onStart` / `onStop`: may be async; runs once per worker (each thread or process has its own module state). */
export type LifecycleHook = (info: WorkerInfo) => unknown;

export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** -1 for a variable dimension. */
  shape: number[];
}

export interface HandlerOptions {
  /** The handler streams (an async generator, or returns an AsyncIterable/Stream). Detected for generator functions. */
  stream?: boolean;
  /**
   * The handler takes an array of requests and returns an array of results of the same length
   * (see {@link BatchHandler}); requests are grouped by the replica's `batch_size`/`batch_wait_ms`.
   * @example
   * ```ts
   * app.capability({ type: "embed" }, async (reqs) => model.embed(reqs.map((r) => String(r.value("text")))), { batch: true });
   * ```
   */
  batch?: boolean;
  /**
   * Runs in each worker before it takes requests (load a model here). A throw is a start
   * failure: retried a few times, then the capability is `failed`.
   * @example
   * ```ts
   * let model: Model | undefined;
   * app.capability({ type: "heavy" }, (req) => model!.run(req.input("x")), {
   *   lazy: true,
   *   onStart: async () => { model = await loadModel("./weights.bin"); },
   *   onStop: () => { model = undefined; },
   * });
   * ```
   */
  onStart?: LifecycleHook;
  /** Runs in each worker when it stops (idle, scale-down, replica stop); errors are logged, not raised. */
  onStop?: LifecycleHook;
  /**
   * Start cold: no workers (and no `onStart`) until the first request, which waits for start-up
   * within its deadline; after the replica's `idle_timeout` without requests the workers stop again.
   */
  lazy?: boolean;
  /**
   * Inputs of a call that works, as a client passes them (`client.infer(capability, example)`):
   * `anyserve up` prints it as the capability's first curl.
   * @example
   * ```ts
   * app.capability({ type: "translate" }, translate, { example: { text: "good morning", to: "fr" } });
   * ```
   */
  example?: Record<string, unknown>;
  /**
   * Under `multi`, `pool` and `process` each worker has its own copy of the app, so state a handler
   * keeps in module variables is per worker. `affinity` says which worker runs a call (absent:
   * the least busy one):
   * - `"instance"`: always the same one worker — all calls meet one copy of the state (the other
   *   workers still serve the app's other capabilities);
   * - a function returning the call's key: calls with the same key always meet the same worker
   *   (keys compare as strings, objects as JSON; `undefined`/`null`: any worker). It runs on the
   *   replica's thread, which decodes the request once to call it.
   *
   * Class services use the key of their first argument (`static affinity` on the class). Under
   * `single` and `async` everything runs on one thread and this changes nothing.
   * @example
   * ```ts
   * const sessions = new Map<string, string[]>();
   * app.capability({ type: "chat" }, (req) => {
   *   const history = sessions.get(String(req.value("session"))) ?? [];
   *   // …
   * }, { affinity: (req) => req.value("session") });
   * ```
   */
  affinity?: "instance" | ((request: InferenceRequest) => unknown);
  /**
   * The tensors the handler takes and answers, declared once: served as OIP model metadata
   * (`GET /v2/models/{m}` on the API server and the replica, gRPC `ModelMetadata`). Without
   * `inputs`, metadata lists the inputs of `example`.
   * @example
   * ```ts
   * app.model("classifier", classify, {
   *   inputs: [{ name: "text", datatype: "BYTES", shape: [-1] }],
   *   outputs: [{ name: "label", datatype: "BYTES", shape: [1] }, { name: "score", datatype: "FP32", shape: [1] }],
   * });
   * ```
   */
  inputs?: TensorSpec[];
  outputs?: TensorSpec[];
  /** The `platform` field of OIP model metadata; default `anyserve`. */
  platform?: string;
  /**
   * Extra facts about the model served in its REST metadata as `parameters` (an anyserve extension;
   * gRPC's ModelMetadataResponse has no such field): the ONNX backend says its execution provider
   * and how it batches.
   */
  parameters?: Parameters;
}

export interface HandlerEntry {
  capability: CapabilityMap;
  fn: Handler;
  /** The function takes the context (arity ≥ 2), as the seed recorded. */
  usesContext: boolean;
  isStream: boolean;
  options: HandlerOptions;
}

/** Marks app objects so a replica recognises one even when the app loaded another copy of the package. */
export const APP_BRAND = Symbol.for("anyserve.app");

export class AnyServe {
  readonly [APP_BRAND] = true;
  readonly #handlers: HandlerEntry[] = [];

  /** Registers `fn` for `capability`; returns `fn` unchanged. The first registered match wins. */
  capability<F extends BatchHandler>(capability: CapabilityInput, fn: F, options: HandlerOptions & { batch: true }): F;
  capability<F extends Handler>(capability: CapabilityInput, fn: F, options?: HandlerOptions): F;
  capability(capability: CapabilityInput, fn: Handler | BatchHandler, options: HandlerOptions = {}): Handler | BatchHandler {
    if (typeof fn !== "function") throw new TypeError(`handler for capability must be a function, got ${typeof fn}`);
    const isStream = options.stream ?? isGeneratorFunction(fn);
    if (options.batch && isStream) throw new TypeError("a handler cannot both stream and take batches");
    const a = options.affinity;
    if (a !== undefined && a !== "instance" && typeof a !== "function")
      throw new TypeError(`affinity must be "instance" or a function of the request, got ${JSON.stringify(a)}`);
    if (a !== undefined && options.batch)
      throw new TypeError("a batch handler cannot have an affinity: one batch holds calls of many keys");
    checkTensorSpecs(options.inputs, "inputs");
    checkTensorSpecs(options.outputs, "outputs");
    for (const hook of ["onStart", "onStop"] as const) {
      if (options[hook] !== undefined && typeof options[hook] !== "function")
        throw new TypeError(`${hook} must be a function, got ${typeof options[hook]}`);
    }
    this.#handlers.push({
      capability: normalizeCapability(capability),
      fn: fn as Handler,
      usesContext: fn.length >= 2,
      isStream,
      options,
    });
    return fn;
  }

  /** Registers a model handler: capability `{model: name}` (plus `version` when given). */
  model<F extends Handler>(name: string, fn: F, options: HandlerOptions & { version?: string } = {}): F {
    const { version, ...rest } = options;
    const cap: CapabilityInput = version === undefined ? { model: name } : { model: name, version };
    return this.capability(cap, fn, rest);
  }

  get handlers(): readonly HandlerEntry[] {
    return this.#handlers;
  }

  /** One capability per handler, in registration order. */
  getCapabilities(): CapabilityMap[] {
    return this.#handlers.map((h) => ({ ...h.capability }));
  }

  /** The first non-streaming handler matching `query`. */
  findHandler(query: CapabilityInput): HandlerEntry | undefined {
    const q = normalizeCapability(query, "query");
    return this.#handlers.find((h) => !h.isStream && matches(h.capability, q));
  }

  /** The first streaming handler matching `query`. */
  findStreamHandler(query: CapabilityInput): HandlerEntry | undefined {
    const q = normalizeCapability(query, "query");
    return this.#handlers.find((h) => h.isStream && matches(h.capability, q));
  }

  /** The first handler of either kind matching `query`. */
  findAnyHandler(query: CapabilityInput): HandlerEntry | undefined {
    return this.handlerFor(normalizeCapability(query, "query"));
  }

  /**
   * @internal {@link findAnyHandler} for a query already normalised, as every call's is (the
   * replica looks its handler up twice per request: whether to delegate, then to dispatch).
   */
  handlerFor(query: CapabilityMap): HandlerEntry | undefined {
    const handlers = this.#handlers;
    for (let i = 0; i < handlers.length; i++) if (matches(handlers[i]!.capability, query)) return handlers[i];
    return undefined;
  }
}

export function isApp(value: unknown): value is AnyServe {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[APP_BRAND] === true;
}

function isGeneratorFunction(fn: unknown): boolean {
  const name = (fn as { constructor?: { name?: string } }).constructor?.name;
  return name === "AsyncGeneratorFunction" || name === "GeneratorFunction";
}
