/**
 * The replica's backend: finds the handler for a call (first registered match wins) and hands
 * the encoded call to that capability's lane (src/execution/lane.ts) under the call's deadline
 * and abort signal. The lane queues it (bounded), batches it, starts cold workers, and runs it
 * with the capability's execution strategy; decoding and encoding happen where the handler runs.
 * Errors leave as AnyServeError with their code.
 */
import { AnyServeError } from "../errors.js";
import { resolveExecution, type ExecutionConfig } from "../execution/config.js";
import { Lane } from "../execution/lane.js";
import { taskOf } from "../execution/task.js";
import type { IncomingCall, InferBackend, ModelMetadata } from "../frontend/backend.js";
import { formatCapability, matches, normalizeCapability, type CapabilityMap } from "../protocol/capability.js";
import type { EncodedBody } from "../protocol/types.js";
import type { AnyServe, HandlerEntry } from "../sdk/app.js";
import type { Caller, ObjectStoreLike } from "../sdk/context.js";
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
  /** `FILE[:export]` of the app, for strategies whose workers load it themselves. */
  appSpec?: string | undefined;
  /** The API server, so that thread and process workers can offer `ctx.call`. */
  apiServer?: string | undefined;
  /** Strategy, sizes, queue and batching; defaults in execution/config.ts. */
  execution?: Partial<ExecutionConfig> | undefined;
  /** A capability turned warm, cold or failed: the registration should say so. */
  onStateChange?: (() => void) | undefined;
}

export class Dispatcher implements InferBackend {
  readonly #o: DispatcherOptions;
  readonly #lanes = new Map<HandlerEntry, Lane>();
  readonly config: ExecutionConfig;
  #draining = false;
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.config = resolveExecution(options.execution, options.appSpec);
    const c = this.config;
    const env = { app: options.app, replicaId: options.replicaId, logger: options.logger, objects: options.objects, caller: options.caller };
    options.app.handlers.forEach((entry, handler) => {
      this.#lanes.set(entry, new Lane({
        entry, handler, strategy: c.strategy, queueSize: c.queueSize, batchSize: c.batchSize, batchWaitMs: c.batchWaitMs,
        idleTimeoutMs: c.idleTimeoutMs, lazy: c.lazy, logger: options.logger, onState: () => options.onStateChange?.(),
        strategyOptions: {
          env, appSpec: options.appSpec, apiServer: options.apiServer, threads: c.threads, maxThreads: c.maxThreads,
          memoryMb: c.memoryMb, graceMs: c.graceMs, startRetries: c.startRetries, poolIdleMs: c.poolIdleMs, workerEnv: c.workerEnv,
        },
      }));
    });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Starts every capability that is not lazy; one that cannot start is `failed`, the others serve. */
  async start(): Promise<void> {
    await Promise.all([...this.#lanes.values()].filter((l) => !l.lazy).map((l) => l.start().catch(() => undefined)));
  }

  /** Stops every capability's workers (`onStop` runs in each). */
  async stop(): Promise<void> {
    await Promise.all([...this.#lanes.values()].map((l) => l.stop().catch(() => undefined)));
  }

  ready(): boolean {
    return !this.#draining;
  }

  /**
   * The answer to the gateway's health probe: not ready while draining, or when every capability
   * has failed to start (workers that crash are replaced by their lane; a lane that keeps failing
   * turns `failed`).
   */
  health(): { ready: boolean; reason?: string } {
    if (this.#draining) return { ready: false, reason: "draining" };
    const lanes = [...this.#lanes.values()];
    if (lanes.length > 0 && lanes.every((l) => l.state === "failed")) {
      return { ready: false, reason: `every capability failed to start (${lanes.length})` };
    }
    return { ready: true };
  }

  /** Stops taking new calls; resolves when the in-flight ones have finished. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Each handler's registry state, in registration order: warm, cold or failed. */
  states(): ("warm" | "cold" | "failed")[] {
    return [...this.#lanes.values()].map((l) => l.registryState);
  }

  /** What `GET /workers` shows: per capability, its state, workers, queue and in-flight requests. */
  workers(): Record<string, unknown>[] {
    return [...this.#lanes.values()].map((l) => l.stats());
  }

  /** Starts (`start`) or stops the workers of every capability matching `query`; returns their stats. */
  async manage(query: CapabilityMap, action: "start" | "stop"): Promise<Record<string, unknown>[]> {
    const q = normalizeCapability(query, "capability");
    const lanes = [...this.#lanes.values()].filter((l) => matches(l.entry.capability, q));
    if (lanes.length === 0) throw this.#noMatch(q);
    await Promise.all(lanes.map((l) => (action === "start" ? l.start() : l.stop())));
    return lanes.map((l) => l.stats());
  }

  infer(call: IncomingCall): Promise<EncodedBody> {
    return this.#run(call, false, (lane, task, signal, hooks) => lane.run(task, signal, hooks));
  }

  async stream(call: IncomingCall, onChunk: (chunk: EncodedBody) => void): Promise<void> {
    await this.#run(call, true, (lane, task, signal, hooks) => lane.stream(task, signal, onChunk, hooks));
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
    const entry = this.#o.app.findAnyHandler(query);
    return !this.#draining && entry !== undefined && this.#lanes.get(entry)?.state !== "failed";
  }

  async #run<T>(
    call: IncomingCall,
    wantStream: boolean,
    go: (lane: Lane, task: ReturnType<typeof taskOf>, signal: AbortSignal, hooks: { lowerDeadline: (i: number, dl: number) => void }) => Promise<T>,
  ): Promise<T> {
    const lane = this.#admit(call, wantStream);
    try {
      return await runWithDeadline(Math.min(call.timeoutMs, this.#o.maxTimeoutMs), call.signal, (signal, deadline, lower) =>
        go(lane, taskOf(call, deadline), signal, { lowerDeadline: (_i, dl) => lower(dl) }));
    } finally {
      this.#release();
    }
  }

  #admit(call: IncomingCall, wantStream: boolean): Lane {
    if (this.#draining) throw new AnyServeError("SHUTTING_DOWN", `replica '${this.#o.replicaId}' is draining and takes no new requests`);
    const entry = this.#o.app.findAnyHandler(call.query);
    if (!entry) {
      if (call.model) throw modelNotFound(call.model.name, call.model.version);
      throw this.#noMatch(call.query);
    }
    if (entry.isStream && !wantStream) {
      throw new AnyServeError("NOT_STREAMING", `${formatCapability(entry.capability)} streams its answer: call it with POST /infer/stream or gRPC ModelStreamInfer`);
    }
    this.#inFlight++;
    return this.#lanes.get(entry)!;
  }

  #noMatch(query: CapabilityMap): AnyServeError {
    return new AnyServeError(
      "NO_MATCHING_CAPABILITY",
      `replica '${this.#o.replicaId}' has no handler for ${formatCapability(query)}; it serves ${
        this.#o.app.getCapabilities().map(formatCapability).join(", ") || "nothing"
      }`,
    );
  }

  #release(): void {
    if (--this.#inFlight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

function modelNotFound(name: string, version?: string): AnyServeError {
  const what = version === undefined ? `model '${name}'` : `model '${name}' version '${version}'`;
  return new AnyServeError("MODEL_NOT_FOUND", `${what} is not served here`);
}
