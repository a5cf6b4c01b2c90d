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
import type { Datatype } from "../protocol/types.js";
import type { Context } from "./context.js";
import type { InferenceRequest } from "./request.js";

/** A handler: plain value (or full OIP response) out, sync or async. */
export type Handler = (request: InferenceRequest, ctx: Context) => unknown;

export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** -1 for a variable dimension. */
  shape: number[];
}

export interface HandlerOptions {
  /** The handler streams (an async generator, or returns an AsyncIterable/Stream). Detected for generator functions. */
  stream?: boolean;
  /** The handler takes an array of requests and returns an array of results of the same length. */
  batch?: boolean;
  /** Declared tensors, served as OIP model metadata. */
  inputs?: TensorSpec[];
  outputs?: TensorSpec[];
  platform?: string;
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
  capability<F extends Handler>(capability: CapabilityInput, fn: F, options: HandlerOptions = {}): F {
    if (typeof fn !== "function") throw new TypeError(`handler for capability must be a function, got ${typeof fn}`);
    const isStream = options.stream ?? isGeneratorFunction(fn);
    this.#handlers.push({
      capability: normalizeCapability(capability),
      fn,
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
    const q = normalizeCapability(query, "query");
    return this.#handlers.find((h) => matches(h.capability, q));
  }
}

export function isApp(value: unknown): value is AnyServe {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[APP_BRAND] === true;
}

function isGeneratorFunction(fn: unknown): boolean {
  const name = (fn as { constructor?: { name?: string } }).constructor?.name;
  return name === "AsyncGeneratorFunction" || name === "GeneratorFunction";
}
