/**
 * The replica's backend: finds the handler for a call (first registered match wins) and hands
 * the encoded call to that capability's lane (src/execution/lane.ts) under the call's deadline
 * and abort signal. The lane queues it (bounded), batches it, starts a cold capability, and runs
 * it with the replica's execution: one set of workers for the whole app under `multi`, `pool` and
 * `process` (shared by the capabilities, each keeping its own lane), the event loop under `single`
 * and `async`. Decoding and encoding happen where the handler runs. Errors leave as AnyServeError
 * with their code.
 *
 * Metrics (when the replica has them): every call that finds its handler is counted here with its
 * outcome — OK, or the code it fails with, including QUEUE_FULL, DEADLINE_EXCEEDED, CANCELLED and
 * SHUTTING_DOWN — under the handler's capability; calls no handler matches are counted with an
 * empty capability. Queue wait, execution time and batch sizes are recorded by the lane.
 */
import { AnyServeError } from "../errors.js";
import { checkExecution, type ExecutionConfig } from "../execution/config.js";
import { createExecution, type CallerAuth, type Execution, type StrategyStats } from "../execution/index.js";
import { addLoad, Lane, type LaneLoad } from "../execution/lane.js";
import { taskOf, type Task, type TaskHooks } from "../execution/task.js";
import { type ChunkSink, describeModel, type IncomingCall, type InferBackend, type ModelMetadata } from "../protocol/call.js";
import type { LaneMetrics, ReplicaMetrics } from "./metrics.js";
import { formatCapability, matches, modelTypeFallback, normalizeCapability, type CapabilityMap } from "../protocol/capability.js";
import { handlerMetadata } from "../sdk/metadata.js";
import type { EncodedBody } from "../protocol/types.js";
import type { AnyServe, HandlerEntry } from "../sdk/app.js";
import { serviceInfo } from "../sdk/service.js";
import type { Caller, ObjectStoreLike } from "../sdk/context.js";
import type { Logger } from "../util/log.js";
import { runWithDeadline } from "../util/deadlines.js";
import type { ReplicaHealth, ReplicaLoad } from "./frame-handler.js";
import type { CancelSignal } from "../util/cancel.js";

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
  apiServer?: string | readonly string[] | undefined;
  /** What worker threads' `ctx.call`s carry (execution/base.ts `callerAuth`). */
  callerAuth?: CallerAuth | undefined;
  /** Strategy, sizes, queue and batching (from the service's config: `replica/service-config.ts`). */
  execution: ExecutionConfig;
  /** A capability turned warm, cold or failed: the registration should say so. */
  onStateChange?: (() => void) | undefined;
  /** The replica's metrics; without them nothing is recorded. */
  metrics?: ReplicaMetrics | undefined;
}

export class Dispatcher implements InferBackend {
  readonly #o: DispatcherOptions;
  readonly #lanes = new Map<HandlerEntry, Lane<LaneMetrics>>();
  /** What every capability runs on (one set of workers for the app under the worker strategies). */
  readonly #execution: Execution;
  readonly config: ExecutionConfig;
  #draining = false;
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];
  /** CPU time at the previous health probe, for `load.process.cpu_percent`. */
  #cpu = { at: performance.now(), usage: process.cpuUsage(), percent: 0 };

  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.config = checkExecution(options.execution, options.appSpec);
    const c = this.config;
    const env = {
      app: options.app,
      replicaId: options.replicaId,
      logger: options.logger,
      objects: options.objects,
      caller: options.caller,
    };
    this.#execution = createExecution(c.strategy, {
      env,
      appSpec: options.appSpec,
      apiServer: options.apiServer,
      callerAuth: options.callerAuth,
      threads: c.threads,
      maxThreads: c.maxThreads,
      memoryMb: c.memoryMb,
      graceMs: c.graceMs,
      startRetries: c.startRetries,
      poolIdleMs: c.poolIdleMs,
      workerEnv: c.workerEnv,
      service: workerService(options.app),
    });
    options.app.handlers.forEach((entry, handler) => {
      // Read when scraped only, once the lane exists.
      const metrics = options.metrics?.lane(entry.capability, {
        batching: entry.options.batch === true && c.batchSize > 1,
        load: () => lane.load(),
      });
      const lane: Lane<LaneMetrics> = new Lane({
        entry,
        handler,
        execution: this.#execution,
        queueSize: c.queueSize,
        batchSize: c.batchSize,
        batchWaitMs: c.batchWaitMs,
        idleTimeoutMs: c.idleTimeoutMs,
        lazy: c.lazy,
        logger: options.logger,
        onState: () => options.onStateChange?.(),
        metrics,
      });
      this.#lanes.set(entry, lane);
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
   * has failed to start (workers that crash are replaced; a capability that keeps failing turns
   * `failed`). `load` sums the lanes' requests running and queued, counts the replica's workers
   * once (the capabilities share them) with the failed capabilities as `failed`, and adds the
   * process's memory and CPU.
   */
  health(): ReplicaHealth & { load: ReplicaLoad } {
    const lanes = [...this.#lanes.values()];
    const sum: LaneLoad = { inFlight: 0, queued: 0, workers: { starting: 0, warm: 0, idle: 0, failed: 0 } };
    for (const l of lanes) addLoad(sum, l.load());
    // Failed: the capabilities that cannot start (each lane says whether it is one).
    const workers = { ...this.#execution.stats().workers, failed: sum.workers.failed };
    const load: ReplicaLoad = { in_flight: sum.inFlight, queue_depth: sum.queued, workers, process: this.#processLoad() };
    if (this.#draining) return { ready: false, reason: "draining", load };
    if (lanes.length > 0 && lanes.every((l) => l.state === "failed")) {
      return { ready: false, reason: `every capability failed to start (${lanes.length})`, load };
    }
    return { ready: true, load };
  }

  /** Resident memory, and CPU since the previous call (several gateways probing: calls < 200 ms apart reuse the figure). */
  #processLoad(): ReplicaLoad["process"] {
    const c = this.#cpu;
    const now = performance.now();
    if (now - c.at >= 200) {
      const usage = process.cpuUsage();
      c.percent = ((usage.user - c.usage.user + usage.system - c.usage.system) / 1000 / (now - c.at)) * 100;
      c.at = now;
      c.usage = usage;
    }
    return { rss_mb: Math.round(process.memoryUsage.rss() / 104857.6) / 10, cpu_percent: Math.round(c.percent * 10) / 10 };
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

  /** What `GET /workers` shows per capability: its state, the workers serving it, its queue and in-flight requests. */
  workers(): Record<string, unknown>[] {
    return [...this.#lanes.values()].map((l) => l.stats());
  }

  /** The replica's workers as a whole (`GET /workers` → `workers`): counted once, whatever number of capabilities share them. */
  workerSummary(): StrategyStats & { threads: number; max_threads: number } {
    const c = this.config;
    const inline = c.strategy === "single" || c.strategy === "async";
    return {
      ...this.#execution.stats(),
      threads: inline ? 1 : c.threads,
      max_threads: inline ? 1 : c.strategy === "pool" ? Math.max(c.threads, c.maxThreads) : c.threads,
    };
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
    return this.#run(call, false, runOn);
  }

  async stream(call: IncomingCall, onChunk: ChunkSink): Promise<void> {
    await this.#run(call, true, (lane, task, signal, hooks) => lane.stream(task, signal, onChunk, hooks));
  }

  async modelMetadata(query: CapabilityMap, name: string, version?: string): Promise<ModelMetadata> {
    const entry = this.#modelHandler(query);
    if (!entry) throw modelNotFound(name, version);
    return handlerMetadata(entry, name, version);
  }

  async modelReady(query: CapabilityMap): Promise<boolean> {
    const entry = this.#modelHandler(query);
    return !this.#draining && entry !== undefined && this.#lanes.get(entry)?.state !== "failed";
  }

  /** True when a handler here takes `call` (delegation sends the others to the API server). */
  canServe(call: IncomingCall): boolean {
    return this.#handlerOf(call) !== undefined;
  }

  #handlerOf(call: IncomingCall): HandlerEntry | undefined {
    return call.model === undefined ? this.#o.app.handlerFor(call.query) : this.#modelHandler(call.query);
  }

  /** The handler a model route reaches: `model=m`, else `type=m` ({@link modelTypeFallback}). */
  #modelHandler(query: CapabilityMap): HandlerEntry | undefined {
    const app = this.#o.app;
    const entry = app.handlerFor(query);
    if (entry !== undefined) return entry;
    const byType = modelTypeFallback(query);
    return byType === undefined ? undefined : app.handlerFor(byType);
  }

  /**
   * Admits the call, runs it on its lane under its deadline, counts the outcome. Rejects, never
   * throws. One `.then`, not an async function: it runs once per request.
   */
  #run<T>(
    call: IncomingCall,
    wantStream: boolean,
    go: (lane: Lane<LaneMetrics>, task: Task, signal: CancelSignal, hooks: TaskHooks) => Promise<T>,
  ): Promise<T> {
    let lane: Lane<LaneMetrics>;
    try {
      lane = this.#admit(call, wantStream);
    } catch (err) {
      return Promise.reject(err);
    }
    const m = lane.metrics;
    return runWithDeadline(Math.min(call.timeoutMs, this.#o.maxTimeoutMs), call.signal, (signal, deadline, hooks) =>
      go(lane, taskOf(call, deadline), signal, hooks),
    ).then(
      (out) => {
        m?.ok();
        this.#release();
        return out;
      },
      (err: unknown) => {
        m?.outcome(codeOf(err));
        this.#release();
        throw err;
      },
    );
  }

  #admit(call: IncomingCall, wantStream: boolean): Lane<LaneMetrics> {
    const entry = this.#handlerOf(call);
    const lane = entry && this.#lanes.get(entry);
    try {
      if (this.#draining) throw new AnyServeError("SHUTTING_DOWN", `replica '${this.#o.replicaId}' is draining and takes no new requests`);
      if (!entry || !lane) {
        if (call.model) throw modelNotFound(call.model.name, call.model.version);
        throw this.#noMatch(call.query);
      }
      if (entry.isStream && !wantStream) {
        throw new AnyServeError(
          "NOT_STREAMING",
          `${formatCapability(entry.capability)} streams its answer: call it with POST /infer/stream or gRPC ModelStreamInfer`,
        );
      }
    } catch (err) {
      if (lane) lane.metrics?.outcome(codeOf(err));
      else this.#o.metrics?.unmatched(codeOf(err));
      throw err;
    }
    this.#inFlight++;
    return lane;
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

/** A class service's name and constructor arguments, which its workers build it with too. */
function workerService(app: AnyServe): { name: string; args: unknown[] } | undefined {
  const info = serviceInfo(app);
  return info && { name: info.name, args: info.args };
}

/** What a non-streaming call does on its lane. */
function runOn(lane: Lane, task: Task, signal: CancelSignal, hooks: TaskHooks): Promise<EncodedBody> {
  return lane.run(task, signal, hooks);
}

function codeOf(err: unknown): string {
  return err instanceof AnyServeError ? err.code : "INTERNAL";
}

function modelNotFound(name: string, version?: string): AnyServeError {
  return new AnyServeError("MODEL_NOT_FOUND", `${describeModel({ name, version })} is not served here`);
}
