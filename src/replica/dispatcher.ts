/**
 * The replica's backend: finds the handler for a call (first registered match wins), decodes the
 * body, runs the handler under the call's deadline and abort signal, and encodes the answer in
 * the caller's wire format. Errors leave as AnyServeError with their code.
 */
import { AnyServeError } from "../errors.js";
import type { IncomingCall, InferBackend, ModelMetadata } from "../frontend/backend.js";
import { formatCapability, type CapabilityMap } from "../protocol/capability.js";
import { decodeRequest, encodeResponse } from "../protocol/codec.js";
import type { EncodedBody, InferRequest, InferResponse } from "../protocol/types.js";
import { handlerResultToResponse } from "../protocol/values.js";
import type { AnyServe, HandlerEntry } from "../sdk/app.js";
import { Context, type Caller, type ObjectStoreLike } from "../sdk/context.js";
import { InferenceRequest } from "../sdk/request.js";
import type { Logger } from "../util/logger.js";
import { runWithDeadline } from "./deadline.js";

export interface DispatcherOptions {
  app: AnyServe;
  replicaId: string;
  logger: Logger;
  /** Upper bound for any request's time, in milliseconds (the service's `timeout`). */
  maxTimeoutMs: number;
  objects?: ObjectStoreLike;
  caller?: Caller;
}

export class Dispatcher implements InferBackend {
  readonly #o: DispatcherOptions;
  #draining = false;
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(options: DispatcherOptions) {
    this.#o = options;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  ready(): boolean {
    return !this.#draining;
  }

  /** Stops taking new calls; resolves when the in-flight ones have finished. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async infer(call: IncomingCall): Promise<EncodedBody> {
    const entry = this.#admit(call, false);
    try {
      const request = decodeRequest(call.body, call);
      const result = await this.#run(entry, call, request, async (req, ctx) => entry.fn(req, ctx));
      return encodeResponse(this.#toResponse(result, entry, call, request), call.format, request);
    } finally {
      this.#release();
    }
  }

  async stream(call: IncomingCall, onChunk: (chunk: EncodedBody) => void): Promise<void> {
    const entry = this.#admit(call, true);
    try {
      const request = decodeRequest(call.body, call);
      await this.#run(entry, call, request, async (req, ctx) => {
        const produced = await entry.fn(req, ctx);
        for await (const item of asAsyncIterable(produced, entry)) {
          if (ctx.signal.aborted) break;
          onChunk(encodeResponse(this.#toResponse(item, entry, call, request), call.format, request));
        }
      });
    } finally {
      this.#release();
    }
  }

  async modelMetadata(query: CapabilityMap, name: string, version?: string): Promise<ModelMetadata> {
    const entry = this.#o.app.findAnyHandler(query);
    if (!entry) throw modelNotFound(name, version);
    const o = entry.options;
    return {
      name,
      ...(version !== undefined ? { versions: [version] } : entry.capability.version ? { versions: [entry.capability.version] } : {}),
      platform: o.platform ?? "anyserve",
      inputs: o.inputs ?? [],
      outputs: o.outputs ?? [],
    };
  }

  async modelReady(query: CapabilityMap): Promise<boolean> {
    return !this.#draining && this.#o.app.findAnyHandler(query) !== undefined;
  }

  #admit(call: IncomingCall, wantStream: boolean): HandlerEntry {
    if (this.#draining) throw new AnyServeError("SHUTTING_DOWN", `replica '${this.#o.replicaId}' is draining and takes no new requests`);
    const entry = this.#o.app.findAnyHandler(call.query);
    if (!entry) {
      if (call.model) throw modelNotFound(call.model.name, call.model.version);
      throw new AnyServeError(
        "NO_MATCHING_CAPABILITY",
        `replica '${this.#o.replicaId}' has no handler for ${formatCapability(call.query)}; it serves ${
          this.#o.app.getCapabilities().map(formatCapability).join(", ") || "nothing"
        }`,
      );
    }
    if (entry.isStream && !wantStream) {
      throw new AnyServeError("NOT_STREAMING", `${formatCapability(entry.capability)} streams its answer: call it with POST /infer/stream or gRPC ModelStreamInfer`);
    }
    this.#inFlight++;
    return entry;
  }

  #release(): void {
    if (--this.#inFlight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  async #run<T>(
    entry: HandlerEntry,
    call: IncomingCall,
    raw: InferRequest,
    body: (req: InferenceRequest, ctx: Context) => Promise<T>,
  ): Promise<T> {
    const timeoutMs = effectiveTimeout(call.timeoutMs, this.#o.maxTimeoutMs, raw);
    return runWithDeadline(timeoutMs, call.signal, (signal, deadline) => {
      const ctx = new Context({
        replicaId: this.#o.replicaId,
        capability: entry.capability,
        requestId: call.requestId,
        signal,
        deadline,
        logger: this.#o.logger,
        objects: this.#o.objects,
        caller: this.#o.caller,
        delegationDepth: call.depth ?? 0,
      });
      return body(new InferenceRequest(raw, call.query), ctx);
    });
  }

  #toResponse(result: unknown, entry: HandlerEntry, call: IncomingCall, req: InferRequest): InferResponse {
    const modelName = call.model?.name ?? req.modelName ?? entry.capability.model ?? entry.capability.type ?? "anyserve";
    const res = handlerResultToResponse(result, req.id === undefined ? { modelName } : { modelName, id: req.id });
    if (call.model?.version !== undefined && res.modelVersion === undefined) res.modelVersion = call.model.version;
    if (req.outputs && req.outputs.length > 0) res.outputs = selectOutputs(res.outputs, req.outputs.map((o) => o.name));
    return res;
  }
}

/** Keeps the outputs a request asked for, in its order (OIP `outputs`); asking for one the handler did not produce is a 400. */
function selectOutputs(outputs: InferResponse["outputs"], wanted: string[]): InferResponse["outputs"] {
  return wanted.map((name) => {
    const found = outputs.find((o) => o.name === name);
    if (!found) {
      throw new AnyServeError("INVALID_REQUEST", `requested output '${name}' is not produced: the handler returned ${outputs.map((o) => `'${o.name}'`).join(", ") || "no outputs"}`);
    }
    return found;
  });
}

function modelNotFound(name: string, version?: string): AnyServeError {
  const what = version === undefined ? `model '${name}'` : `model '${name}' version '${version}'`;
  return new AnyServeError("MODEL_NOT_FOUND", `${what} is not served here`);
}

/**
 * The deadline: the caller's remaining time, capped by the service's timeout, lowered (never
 * raised) by the request's own `timeout` parameter, which is in microseconds as in Triton.
 */
export function effectiveTimeout(callerMs: number, maxMs: number, req: InferRequest): number {
  let ms = Math.min(callerMs, maxMs);
  const t = req.parameters?.timeout;
  if (t !== undefined) {
    if (typeof t !== "number" || !Number.isFinite(t) || t <= 0) {
      throw new AnyServeError("INVALID_PARAMETER", `parameter 'timeout': expected a positive number of microseconds, got ${JSON.stringify(t)}`);
    }
    ms = Math.min(ms, t / 1000);
  }
  return ms;
}

function asAsyncIterable(value: unknown, entry: HandlerEntry): AsyncIterable<unknown> {
  if (value && typeof value === "object") {
    if (Symbol.asyncIterator in value) return value as AsyncIterable<unknown>;
    if (Symbol.iterator in value && !Array.isArray(value) && !ArrayBuffer.isView(value)) {
      return (async function* () { yield* value as Iterable<unknown>; })();
    }
  }
  if (entry.isStream) {
    throw new AnyServeError("WORKER_ERROR", `streaming handler for ${formatCapability(entry.capability)} returned ${typeof value}, expected an async iterable or Stream`);
  }
  return (async function* () { yield value; })();
}
