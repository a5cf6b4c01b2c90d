/**
 * A group of workers (threads or processes) behind one ExecutionStrategy: `multi`, `pool` and
 * `process` are this group with different sizes and a different WorkerHandle.
 *
 * - **Pipelined hop.** Jobs are id-tagged messages; a worker may hold `depth.normal` (2) of them,
 *   so it never idles on a round trip (measured: pipelined messages kept 0.85× of inline
 *   throughput, one-task-per-thread round trips 0.43×). While the handler's average run time is
 *   under 1 ms the hop dominates, and a worker may hold `depth.cheap` (64); longer handlers keep
 *   the shallow pipeline so that jobs wait here, where any worker that frees up takes them. A job
 *   goes to the warm worker holding the fewest.
 * - **Known running job.** Workers run their jobs in order (worker-runtime.ts), so the oldest
 *   unanswered job of a worker is the one running. When a worker dies, that job fails (502
 *   WORKER_CRASHED, or WORKER_OUT_OF_MEMORY) and the others, which never started, go to another
 *   worker — unless their body was transferred away, which is why such jobs only go to idle workers.
 * - **Aborts.** An aborted job still queued here is dropped; one queued in a worker is cancelled
 *   there; the running one gets CANCEL and `graceMs` to finish before its worker is terminated.
 * - **Replacement.** A dead worker is replaced; start failures in a row are capped at
 *   `startRetries`, then the group gives up and reports the reason.
 * - **Growth** (`pool`): from `min` to `max` workers while no worker is idle; a worker above
 *   `min` idle for `idleMs` stops.
 */
import { AnyServeError } from "../errors.js";
import type { ChunkSink } from "../protocol/call.js";
import type { Logger } from "../util/log.js";
import type { StrategyName, StrategyStats } from "./base.js";
import type { SpawnWorker, WorkerExit } from "./handle.js";
import { Job, type Slot } from "./job.js";
import type { JobMode, Task, TaskHooks } from "./task.js";
import { batchOutcomesOf, encodedOf, errorOf, Msg, WORKER_STREAM_WINDOW_BYTES, type Meta } from "./worker-protocol.js";
import { chunkCost } from "../transport/frames.js";
import type { CancelSignal } from "../util/cancel.js";

export interface GroupOptions {
  name: StrategyName;
  spawn: SpawnWorker;
  /** Name prefix of the workers: `thread` or `process`. */
  kind: string;
  min: number;
  max: number;
  depth: { normal: number; cheap: number };
  graceMs: number;
  startRetries: number;
  idleMs: number;
  logger: Logger;
  onFailed?: ((reason: string) => void) | undefined;
}

/** Handlers faster than this on average get the deep pipeline. */
const CHEAP_MS = 1;

export class WorkerGroup {
  readonly #o: GroupOptions;
  readonly #slots = new Set<Slot>();
  readonly #waiting: Job[] = [];
  readonly #min: number;
  #nextId = 1;
  #nextWorker = 1;
  #state: "new" | "running" | "failed" | "stopped" = "new";
  #bootFailures = 0;
  #lastFailure = "";
  #replaced = 0;
  #inFlight = 0;
  #startWaiters: { resolve: () => void; reject: (e: AnyServeError) => void }[] = [];
  #shrinkTimer: NodeJS.Timeout | undefined;
  readonly #respawns = new Set<NodeJS.Timeout>();
  /** Average run time of a job on a worker (ms, moving average); starts at the threshold: "not cheap". */
  #runMs = CHEAP_MS;

  constructor(o: GroupOptions) {
    this.#o = o;
    this.#min = o.min;
  }

  get capacity(): number {
    return this.#o.max * this.#depth();
  }

  /** How many jobs a worker may hold now: deeper while the handler is cheap. */
  #depth(): number {
    return this.#runMs < CHEAP_MS ? this.#o.depth.cheap : this.#o.depth.normal;
  }

  get maxWorkers(): number {
    return this.#o.max;
  }

  /** Starts `min` workers; resolves when all are warm, rejects with CAPABILITY_FAILED when they cannot start. */
  start(): Promise<void> {
    this.#state = "running";
    for (let i = 0; i < this.#min; i++) this.#spawn();
    if (this.#o.max > this.#o.min) {
      this.#shrinkTimer = setInterval(() => this.#shrink(), Math.max(50, this.#o.idleMs / 2));
      this.#shrinkTimer.unref();
    }
    return new Promise((resolve, reject) => {
      this.#startWaiters.push({ resolve, reject });
      this.#checkStarted();
    });
  }

  /** Every caller of a job has gone (one function for all jobs, not a closure per job). */
  readonly #onJobAbort = (job: Job): void => this.#abort(job);

  run(mode: JobMode, tasks: Task[], signals: CancelSignal[], hooks?: TaskHooks, onChunk?: ChunkSink): Promise<unknown> {
    if (this.#state !== "running")
      return Promise.reject(new AnyServeError("SHUTTING_DOWN", `the ${this.#o.name} workers are ${this.#state}`));
    return new Promise((resolve, reject) => {
      const id = (this.#nextId = (this.#nextId % 0xffff_fffe) + 1);
      const job = new Job({ id, mode, tasks, signals, hooks, onChunk, resolve, reject, onAbort: this.#onJobAbort });
      if (job.signal.aborted) return job.settle(job.abortError());
      this.#inFlight++;
      this.#waiting.push(job);
      this.#dispatch();
    });
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    clearInterval(this.#shrinkTimer);
    for (const t of this.#respawns) clearTimeout(t);
    for (const job of this.#waiting.splice(0)) this.#settle(job, new AnyServeError("SHUTTING_DOWN", "the workers are stopping"));
    this.#rejectStart(new AnyServeError("SHUTTING_DOWN", "the workers were stopped before they started"));
    await Promise.all([...this.#slots].map((slot) => this.#stopSlot(slot, timeoutMs)));
  }

  stats(): StrategyStats {
    const workers = { starting: 0, warm: 0, idle: 0, failed: this.#state === "failed" ? 1 : 0 };
    for (const s of this.#slots) {
      if (s.state === "starting") workers.starting++;
      else if (s.state === "warm") {
        workers.warm++;
        if (s.jobs.length === 0) workers.idle++;
      }
    }
    return { strategy: this.#o.name, workers, inFlight: this.#inFlight, queued: this.#waiting.length, replaced: this.#replaced };
  }

  #spawn(): void {
    const handle = this.#o.spawn(`${this.#o.kind}-${this.#nextWorker++}`);
    const slot: Slot = { handle, state: "starting", jobs: [], idleSince: Date.now(), lastDone: 0 };
    this.#slots.add(slot);
    handle.onMessage = (type, id, meta, body) => this.#message(slot, type, id, meta, body);
    handle.onExit = (exit) => this.#exited(slot, exit);
  }

  #dispatch(): void {
    while (this.#waiting.length > 0) {
      const job = this.#waiting[0]!;
      const slot = this.#pick(job);
      if (!slot) break;
      this.#waiting.shift();
      job.sendTo(slot);
    }
    this.#grow();
  }

  /** The warm worker with the fewest jobs, below the depth; a job whose body moves waits for an idle one. */
  #pick(job: Job): Slot | undefined {
    let best: Slot | undefined;
    const limit = job.moves ? 1 : this.#depth();
    for (const s of this.#slots) {
      if (s.state === "warm" && s.jobs.length < limit && (!best || s.jobs.length < best.jobs.length)) best = s;
    }
    return best;
  }

  /** `pool`: one more thread per job that has no idle worker, up to `max`. */
  #grow(): void {
    if (this.#state !== "running" || this.#slots.size >= this.#o.max) return;
    let idle = 0;
    let starting = 0;
    let behind = this.#waiting.length;
    for (const s of this.#slots) {
      if (s.state === "starting") starting++;
      else if (s.state === "warm" && s.jobs.length === 0) idle++;
      behind += Math.max(0, s.jobs.length - 1);
    }
    if (idle > 0) return;
    while (starting < behind && this.#slots.size < this.#o.max) {
      this.#spawn();
      starting++;
    }
  }

  #shrink(): void {
    const now = Date.now();
    // Slots being stopped stay in #slots until their worker exits: count only the live ones, or
    // one pass would stop every idle worker, the ones `min` keeps included.
    let live = 0;
    for (const s of this.#slots) if (s.state !== "stopping") live++;
    for (const s of this.#slots) {
      if (live <= this.#min) return;
      if (s.state === "warm" && s.jobs.length === 0 && now - s.idleSince >= this.#o.idleMs) {
        live--;
        void this.#stopSlot(s, 10_000);
      }
    }
  }

  #message(slot: Slot, type: number, id: number, meta: Meta, body: Buffer): void {
    switch (type) {
      case Msg.READY:
        slot.state = "warm";
        slot.idleSince = Date.now();
        this.#bootFailures = 0;
        this.#lastFailure = "";
        this.#checkStarted();
        this.#dispatch();
        return;
      case Msg.BOOT_FAILED:
        this.#lastFailure = errorOf(meta)?.message ?? "start failed";
        slot.handle.terminate();
        return;
      case Msg.RESULT:
      case Msg.END: {
        const job = this.#take(slot, id);
        if (!job) return;
        this.#measure(slot, job);
        const err = errorOf(meta);
        if (err) this.#settle(job, err);
        else
          this.#settle(
            job,
            undefined,
            job.mode === "batch" ? batchOutcomesOf(meta, body) : job.mode === "stream" ? undefined : encodedOf(meta, body),
          );
        this.#dispatch();
        return;
      }
      case Msg.CHUNK: {
        const job = slot.jobs.find((j) => j.id === id);
        if (!job || job.settled) return;
        const cost = chunkCost(body);
        const taken = job.onChunk?.(encodedOf(meta, body));
        // The worker's window opens again only once the consumer took the chunk (Msg.CREDIT).
        if (!(taken instanceof Promise)) this.#grant(slot, job, cost);
        else {
          const grant = (): void => this.#grant(slot, job, cost);
          taken.then(grant, grant);
        }
        return;
      }
      case Msg.DEADLINE: {
        const job = slot.jobs.find((j) => j.id === id);
        if (job && typeof meta?.dl === "number") job.hooks?.lowerDeadline?.(Number(meta.i ?? 0), meta.dl);
        return;
      }
      case Msg.STOPPED: {
        // onStop ran; the worker exits by itself (a process flushes its output) or is ended here.
        const t = setTimeout(() => slot.handle.terminate(), 1_000);
        t.unref();
        return;
      }
    }
  }

  /** A stream job's consumer took `cost` bytes: CREDIT the worker once they add up to half a window. */
  #grant(slot: Slot, job: Job, cost: number): void {
    if (job.settled || job.slot !== slot) return;
    job.ungranted += cost;
    if (job.ungranted < WORKER_STREAM_WINDOW_BYTES / 2) return;
    slot.handle.send(Msg.CREDIT, job.id, { n: job.ungranted });
    job.ungranted = 0;
  }

  /** Run time: from when the job could start (sent, or its predecessor done) to its answer. */
  #measure(slot: Slot, job: Job): void {
    const now = performance.now();
    const ran = now - Math.max(job.sentAt, slot.lastDone);
    slot.lastDone = now;
    if (job.settled) return; // an abandoned job says little about the handler
    this.#runMs = 0.8 * this.#runMs + 0.2 * ran;
  }

  /** Removes an answered job from its worker; the worker may be idle now. */
  #take(slot: Slot, id: number): Job | undefined {
    const at = slot.jobs.findIndex((j) => j.id === id);
    if (at < 0) return undefined;
    const [job] = slot.jobs.splice(at, 1);
    if (slot.jobs.length === 0) slot.idleSince = Date.now();
    clearTimeout(job!.graceTimer);
    // The next job starts now; if its callers already left, it gets the same grace as any abort.
    const next = slot.jobs[0];
    if (next?.signal.aborted && !next.graceTimer) this.#armGrace(next, slot);
    return job;
  }

  #abort(job: Job): void {
    const slot = job.slot;
    if (!slot) {
      const at = this.#waiting.indexOf(job);
      if (at >= 0) this.#waiting.splice(at, 1);
      this.#settle(job, job.abortError());
      return;
    }
    slot.handle.send(Msg.CANCEL, job.id, null);
    if (slot.jobs[0] === job) this.#armGrace(job, slot); // else queued in the worker: it answers CANCELLED at once
  }

  /** A running job whose callers left has `graceMs` to end before its worker is terminated. */
  #armGrace(job: Job, slot: Slot): void {
    job.graceTimer = setTimeout(() => {
      if (slot.jobs.includes(job)) {
        this.#o.logger.warn({ worker: slot.handle.name, graceMs: this.#o.graceMs }, "worker ignored an abort; terminating it");
        slot.handle.terminate();
      }
    }, this.#o.graceMs);
    job.graceTimer.unref();
  }

  #exited(slot: Slot, exit: WorkerExit): void {
    this.#slots.delete(slot);
    const wasStarting = slot.state === "starting";
    const jobs = slot.jobs.splice(0);
    const running = jobs.shift();
    if (running) this.#settle(running, this.#deathError(running, slot, exit));
    // Jobs queued behind it never started: they go elsewhere, unless their body moved with the worker.
    for (const job of jobs.reverse()) {
      if (job.signal.aborted) this.#settle(job, job.abortError());
      else if (job.moves || this.#state !== "running")
        this.#settle(job, new AnyServeError("WORKER_CRASHED", `${exit.detail} before it started request '${job.rid}'`));
      else {
        job.slot = undefined;
        this.#waiting.unshift(job);
      }
    }
    if (this.#state !== "running" || slot.state === "stopping") {
      this.#dispatch();
      return;
    }
    if (wasStarting) {
      this.#bootFailures++;
      if (!this.#lastFailure) this.#lastFailure = exit.detail;
      this.#o.logger.warn({ worker: slot.handle.name, failures: this.#bootFailures, reason: this.#lastFailure }, "worker failed to start");
      if (this.#bootFailures >= this.#o.startRetries) {
        this.#fail();
        return;
      }
    } else {
      this.#replaced++;
      this.#o.logger.warn({ worker: slot.handle.name, reason: exit.detail }, "worker died; replacing it");
    }
    this.#respawnLater(wasStarting ? 100 * this.#bootFailures : 0);
  }

  /** Replaces a dead worker; after a start failure, with a short growing pause (no tight respawn loop). */
  #respawnLater(delayMs: number): void {
    const again = (): void => {
      this.#respawns.delete(timer);
      if (this.#state !== "running") return;
      if (this.#slots.size < this.#min) this.#spawn();
      this.#dispatch();
    };
    const timer = setTimeout(again, delayMs);
    this.#respawns.add(timer);
  }

  #deathError(job: Job, slot: Slot, exit: WorkerExit): AnyServeError {
    if (job.signal.aborted) return job.abortError();
    if (slot.state === "stopping")
      return new AnyServeError("SHUTTING_DOWN", `${exit.detail} while stopping, before request '${job.rid}' finished`);
    const code = exit.reason === "oom" ? "WORKER_OUT_OF_MEMORY" : "WORKER_CRASHED";
    return new AnyServeError(code, `${exit.detail} while running request '${job.rid}'`);
  }

  #fail(): void {
    this.#state = "failed";
    clearInterval(this.#shrinkTimer);
    for (const t of this.#respawns) clearTimeout(t);
    const reason = `${this.#o.kind} workers failed to start ${this.#bootFailures} time(s) in a row: ${this.#lastFailure}`;
    const err = new AnyServeError("CAPABILITY_FAILED", reason);
    for (const job of this.#waiting.splice(0)) this.#settle(job, err);
    for (const s of this.#slots) s.handle.terminate();
    this.#rejectStart(err);
    this.#o.onFailed?.(reason);
  }

  #checkStarted(): void {
    let warm = 0;
    for (const s of this.#slots) if (s.state === "warm") warm++;
    if (warm < this.#min) return;
    for (const w of this.#startWaiters.splice(0)) w.resolve();
  }

  #rejectStart(err: AnyServeError): void {
    for (const w of this.#startWaiters.splice(0)) w.reject(err);
  }

  #stopSlot(slot: Slot, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const prevExit = slot.handle.onExit;
      slot.handle.onExit = (exit) => {
        clearTimeout(timer);
        prevExit(exit);
        resolve();
      };
      const timer = setTimeout(() => slot.handle.terminate(), slot.state === "warm" ? timeoutMs : 0);
      if (slot.state === "warm") slot.handle.send(Msg.STOP, 0, null);
      slot.state = "stopping";
    });
  }

  #settle(job: Job, err: AnyServeError | undefined, value?: unknown): void {
    if (job.settle(err, value)) this.#inFlight--;
  }
}
