/**
 * What a handler gets besides its request: who it is, what it matched, its deadline and abort
 * signal, a logger — and, where the replica has them, the object store and cross-replica calls.
 */
import { AnyServeError } from "../errors.js";
import { normalizeCapability, type CapabilityInput, type CapabilityMap } from "../protocol/capability.js";
import type { ObjectStoreApi } from "../objects/types.js";
import type { InferRequest, InferResponse } from "../protocol/types.js";
import type { Logger } from "../util/log.js";
import { toAbortSignal, type CancelSignal } from "../util/cancel.js";

/** Options for {@link Context.call}. */
export interface CallOptions {
  /** Milliseconds; never more than the caller's own remaining time. */
  timeout?: number;
  /**
   * The call's affinity key (`X-Anyserve-Affinity`): under `load_balancing: consistent_hash` calls
   * with the same key reach the same replica. Class-service proxies send the first argument.
   */
  affinity?: string;
}

/** A cross-replica caller (provided by the replica when it knows its API server). */
export interface Caller {
  call(capability: CapabilityMap, inputs: unknown, options: CallOptions & { timeout: number; signal?: AbortSignal }): Promise<unknown>;
  /** The call with a whole request in and the whole response out (a Python worker's CALL: nothing decoded to values). */
  callRaw?(
    capability: CapabilityMap,
    request: InferRequest,
    options: { timeout: number; signal?: AbortSignal; affinity?: string },
  ): Promise<InferResponse>;
  callStream?(
    capability: CapabilityMap,
    inputs: unknown,
    options: CallOptions & { timeout: number; signal?: AbortSignal },
  ): AsyncIterable<unknown>;
  /** The streaming call with a whole request in and each chunk's whole response out (a worker's CALL_STREAM). */
  callStreamRaw?(
    capability: CapabilityMap,
    request: InferRequest,
    options: { timeout: number; signal?: AbortSignal; affinity?: string },
  ): AsyncIterable<InferResponse>;
}

/** The object store surface handlers use (`src/objects/`, see docs/objects.md). */
export type ObjectStoreLike = ObjectStoreApi;

export interface ContextInit {
  replicaId: string;
  capability: CapabilityMap;
  requestId: string;
  /** The call's cancellation; `ctx.signal` makes a real AbortSignal of it only if the handler asks. */
  signal: CancelSignal;
  logger: Logger;
  /** Epoch milliseconds after which the request has failed. */
  deadline: number;
  objects?: ObjectStoreLike | undefined;
  caller?: Caller | undefined;
  delegationDepth?: number;
}

export class Context {
  readonly replicaId: string;
  /** The capability of the handler that matched. */
  readonly capability: CapabilityMap;
  readonly requestId: string;
  readonly logger: Logger;
  readonly deadline: number;
  readonly #objects: ObjectStoreLike | undefined;
  readonly #caller: Caller | undefined;
  readonly #depth: number;
  readonly #cancel: CancelSignal;

  constructor(init: ContextInit) {
    this.replicaId = init.replicaId;
    this.capability = init.capability;
    this.requestId = init.requestId;
    this.#cancel = init.signal;
    this.logger = init.logger;
    this.deadline = init.deadline;
    this.#objects = init.objects;
    this.#caller = init.caller;
    this.#depth = init.delegationDepth ?? 0;
  }

  /** Fires when the deadline passes or the caller goes away. */
  get signal(): AbortSignal {
    return toAbortSignal(this.#cancel);
  }

  /** Milliseconds left before the deadline (never negative). */
  get remainingMs(): number {
    return Math.max(0, this.deadline - Date.now());
  }

  get objects(): ObjectStoreLike {
    if (!this.#objects) throw new AnyServeError("INTERNAL", "ObjectStore not available: start the replica with --object-store DIR");
    return this.#objects;
  }

  /**
   * Calls another capability through the API server, within this request's deadline (the
   * callee's deadline is what remains of ours, or `options.timeout` if shorter), and cancels it
   * when this request is aborted.
   *
   * @example
   * ```ts
   * app.capability({ type: "chat" }, async (req, ctx) => {
   *   const { embedding } = await ctx.call({ type: "embed" }, { text: req.value("text") }) as { embedding: Float32Array };
   *   return { dims: embedding.length };
   * });
   * ```
   */
  call(capability: CapabilityInput, inputs: unknown, options: CallOptions = {}): Promise<unknown> {
    if (!this.#caller) {
      return Promise.reject(new AnyServeError("INTERNAL", "cross-replica call not available: the replica has no --api-server"));
    }
    return this.#caller.call(normalizeCapability(capability), inputs, this.#callOptions(options));
  }

  /** Streams another capability's chunks (see {@link call}). */
  callStream(capability: CapabilityInput, inputs: unknown, options: CallOptions = {}): AsyncIterable<unknown> {
    if (!this.#caller?.callStream) {
      throw new AnyServeError("INTERNAL", "cross-replica call not available: the replica has no --api-server");
    }
    return this.#caller.callStream(normalizeCapability(capability), inputs, this.#callOptions(options));
  }

  /** Hops this request took by delegation so far. */
  get delegationDepth(): number {
    return this.#depth;
  }

  #callOptions(options: CallOptions): CallOptions & { timeout: number; signal: AbortSignal } {
    return { ...options, timeout: Math.min(options.timeout ?? Infinity, this.remainingMs), signal: this.signal };
  }
}
