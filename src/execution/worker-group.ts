/**
 * A group of workers (threads or processes) that runs every handler of one replica's app: `multi`,
 * `pool` and `process` are this group with different sizes and a different WorkerHandle. The
 * replica's capabilities share it (execution/workers.ts): each worker loads the app once, starts a
 * capability when the capability starts (OPEN: its `onStart` runs in every worker, and in every
 * worker that joins later) and stops it when it stops (CLOSE: `onStop`); the workers themselves
 * stop when no capability is started any more. A class service thus has one instance per worker,
 * which all its methods use.
 *
 * - **Pipelined hop.** Jobs are id-tagged messages; a worker may hold `depth.normal` (2) of them,
 *   so it never idles on a round trip (measured: pipelined messages kept 0.85× of inline
 *   throughput, one-task-per-thread round trips 0.43×). While a handler's average run time is
 *   under 1 ms the hop dominates, and a worker may hold `depth.cheap` (64) of its jobs; longer
 *   handlers keep the shallow pipeline so that jobs wait here, where any worker that frees up takes
 *   them. A job goes to the warm worker holding the fewest, and never queues inside a worker behind
 *   another capability's job (so one capability's slow calls do not hold up another's): the choice
 *   is worker-pick.ts's.
 * - **Affinity.** A job may be pinned (`pin`, a hash of its affinity key): it runs on the worker in
 *   place `pin % min` — the places 0 … min−1 are the workers the group always keeps, and a
 *   replacement takes its predecessor's place — so calls with one key always meet the same state.
 * - **Known running job** (worker-failures.ts). Workers run their jobs in order
 *   (worker-runtime.ts), so the oldest unanswered job of a worker is the one running (the oldest
 *   `perWorker`, for a worker that runs several at once, as a Python `async` worker does). When a
 *   worker dies, those fail (502 WORKER_CRASHED, or WORKER_OUT_OF_MEMORY) and the others, which
 *   never started, go to another worker — unless their body was transferred away, which is why
 *   such jobs only go to idle workers. A worker starting or stopping a handler takes no new jobs
 *   meanwhile, for the same reason.
 * - **Aborts.** An aborted job still queued here is dropped; one queued in a worker is cancelled
 *   there; the running one gets CANCEL and `graceMs` to finish before its worker is terminated.
 * - **Replacement.** A dead worker is replaced; start failures in a row (worker-failures.ts) are
 *   capped at `startRetries`, then the group gives up and every handler fails with the reason. A
 *   handler whose `onStart` throws is retried the same way, and fails alone.
 * - **Growth** (`pool`, worker-pool-size.ts): the rule replicas follow too (util/scaling.ts): the
 *   load is the jobs ongoing plus queued, and it needs `ceil(load / WORKER_TARGET)` workers within
 *   `[min, max]`. A worker starts as soon as the load needs it (starting one takes milliseconds:
 *   docs/performance.md "Worker boot", so no upscale delay); one the load no longer needs stops
 *   once it has been idle for `idleMs` (the downscale delay), the idle ones only — a worker with a
 *   job is never stopped to shrink. Pinned jobs run only on the `min` workers, so queued pinned
 *   jobs do not count toward growth, and the `min` workers never stop.
 */
import { AnyServeError } from "../errors.js";
import type { ChunkSink } from "../protocol/call.js";
import type { Logger } from "../util/log.js";
import type { StrategyName, StrategyStats } from "./base.js";
import type { SpawnWorker, WorkerExit, WorkerHandle } from "./handle.js";
import { Job, type Slot } from "./job.js";
import type { JobMode, Task, TaskHooks } from "./task.js";
import { batchOutcomesOf, encodedOf, errorOf, handlerOf, Msg, WORKER_STREAM_WINDOW_BYTES, type Meta } from "./worker-protocol.js";
import { chunkCost } from "../transport/frames.js";
import type { CancelSignal } from "../util/cancel.js";
import { queuedJobError, runningJobError, StartFailures } from "./worker-failures.js";
import { hasRoom, pickSlot } from "./worker-pick.js";
import { idleSurplus, liveWorkers, workersWanted } from "./worker-pool-size.js";

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
  /** Runs before the first worker is spawned (a process group's socket starts listening); a throw fails the group. */
  prepare?: (() => Promise<void>) | undefined;
  /** Runs after the workers have stopped (the socket and its directory go). */
  cleanup?: (() => Promise<void>) | undefined;
  /** Jobs a worker runs at once, started in arrival order (default 1). */
  perWorker?: number | undefined;
  /**
   * A message a worker sends on its own (a Python worker's CALL or FETCH): answer it on `handle`.
   * `signal` is the abort signal of the job it names in `meta.job`, while that job is unanswered.
   */
  onWorkerRequest?: ((handle: WorkerHandle, type: number, id: number, meta: Meta, body: Buffer, signal?: CancelSignal) => void) | undefined;
}

/** Handlers faster than this on average get the deep pipeline. */
const CHEAP_MS = 1;
/** How long a worker may take to run a handler's `onStop` (or `STOP`) before it is terminated. */
const STOP_TIMEOUT_MS = 10_000;

/** A handler started (or being started) on the group's workers. */
interface Opened {
  h: number;
  /** Called once if it cannot start (its `onStart` failed `startRetries` times, or the workers cannot start). */
  onFailed: (reason: string) => void;
  /** `open()` calls waiting for `min` workers to have started it. */
  waiters: { resolve: () => void; reject: (e: AnyServeError) => void }[];
  /** `onStart` failures in a row. */
  failures: number;
  /** Pending retries of a failed `onStart`. */
  retries: Set<NodeJS.Timeout>;
  /** Average run time of its jobs on a worker (ms, moving average); starts at the threshold: "not cheap". */
  runMs: number;
}

export class WorkerGroup {
  readonly #o: GroupOptions;
  readonly #slots = new Set<Slot>();
  readonly #waiting: Job[] = [];
  readonly #handlers = new Map<number, Opened>();
  readonly #min: number;
  #nextId = 1;
  #nextWorker = 1;
  #state: "new" | "running" | "failed" | "stopped" = "new";
  readonly #startFailures = new StartFailures();
  #replaced = 0;
  #inFlight = 0;
  #shrinkTimer: NodeJS.Timeout | undefined;
  #prepared: Promise<void> | undefined;
  readonly #respawns = new Set<NodeJS.Timeout>();

  constructor(o: GroupOptions) {
    this.#o = o;
    this.#min = o.min;
  }

  get state(): "new" | "running" | "failed" | "stopped" {
    return this.#state;
  }

  /** Handlers started or starting. */
  get handlerCount(): number {
    return this.#handlers.size;
  }

  /** Jobs of handler `h` that may be out at once: every worker's pipeline. */
  capacity(h: number): number {
    return this.#o.max * this.#depth(this.#handlers.get(h));
  }

  /** How many jobs of a handler a worker may hold now: deeper while the handler is cheap. */
  #depth(o: Opened | undefined): number {
    return o !== undefined && o.runMs < CHEAP_MS ? this.#o.depth.cheap : this.#o.depth.normal;
  }

  get maxWorkers(): number {
    return this.#o.max;
  }

  /**
   * Starts handler `h` (its `onStart`) in every worker, starting the workers first if they are not
   * running; resolves once `min` workers have started it. Rejects with CAPABILITY_FAILED when it
   * (or the workers) cannot start after `startRetries` attempts; `onFailed` is called then too, and
   * also if a later worker of a started handler keeps failing.
   */
  open(h: number, onFailed: (reason: string) => void = () => undefined): Promise<void> {
    if (this.#state === "failed" || this.#state === "stopped")
      return Promise.reject(new AnyServeError("SHUTTING_DOWN", `the ${this.#o.name} workers are ${this.#state}`));
    if (this.#handlers.has(h)) return Promise.reject(new AnyServeError("INTERNAL", `handler #${h} is already started on these workers`));
    const o: Opened = { h, onFailed, waiters: [], failures: 0, retries: new Set(), runMs: CHEAP_MS };
    this.#handlers.set(h, o);
    const done = new Promise<void>((resolve, reject) => o.waiters.push({ resolve, reject }));
    if (this.#state === "new") this.#start();
    else for (const s of this.#slots) if (s.state === "warm") this.#sendOpen(s, h);
    this.#checkOpen(o);
    return done;
  }

  /**
   * Stops handler `h`: its jobs waiting here fail with SHUTTING_DOWN, the ones its workers hold
   * finish, then its `onStop` runs in each worker. Resolves when every worker has run it.
   */
  async close(h: number): Promise<void> {
    const o = this.#handlers.get(h);
    if (!o) return;
    this.#drop(o, new AnyServeError("SHUTTING_DOWN", "the capability was stopped before it started"));
    this.#failWaiting(h, new AnyServeError("SHUTTING_DOWN", "the capability is stopping"));
    const closed: Promise<void>[] = [];
    for (const s of this.#slots) {
      if (s.state === "stopping" || s.closing.has(h) || !(s.open.has(h) || s.opening.has(h))) continue;
      closed.push(this.#sendClose(s, h));
    }
    await Promise.all(closed);
    this.#dispatch();
  }

  /** Every caller of a job has gone (one function for all jobs, not a closure per job). */
  readonly #onJobAbort = (job: Job): void => this.#abort(job);

  /** Runs a job of handler `h` (started with `open`); `pin` keeps it on one worker (see the file's comment). */
  run(
    h: number,
    pin: number | undefined,
    mode: JobMode,
    tasks: Task[],
    signals: CancelSignal[],
    hooks?: TaskHooks,
    onChunk?: ChunkSink,
  ): Promise<unknown> {
    if (this.#state !== "running")
      return Promise.reject(new AnyServeError("SHUTTING_DOWN", `the ${this.#o.name} workers are ${this.#state}`));
    if (!this.#handlers.has(h))
      return Promise.reject(new AnyServeError("SHUTTING_DOWN", `handler #${h} is not started on the ${this.#o.name} workers`));
    return new Promise((resolve, reject) => {
      const id = (this.#nextId = (this.#nextId % 0xffff_fffe) + 1);
      const job = new Job({ id, h, pin, mode, tasks, signals, hooks, onChunk, resolve, reject, onAbort: this.#onJobAbort });
      if (job.signal.aborted) return job.settle(job.abortError());
      this.#inFlight++;
      this.#waiting.push(job);
      this.#dispatch();
    });
  }

  /** Stops every worker (each runs `onStop` of the handlers it started); waiting jobs fail with SHUTTING_DOWN. */
  async stop(timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    clearInterval(this.#shrinkTimer);
    for (const t of this.#respawns) clearTimeout(t);
    for (const o of [...this.#handlers.values()])
      this.#drop(o, new AnyServeError("SHUTTING_DOWN", "the workers were stopped before they started"));
    for (const job of this.#waiting.splice(0)) this.#settle(job, new AnyServeError("SHUTTING_DOWN", "the workers are stopping"));
    await Promise.all([...this.#slots].map((slot) => this.#stopSlot(slot, timeoutMs)));
    await this.#prepared?.catch(() => undefined);
    await this.#o.cleanup?.();
  }

  /**
   * Workers by state, jobs in flight and waiting: of the whole group, or as handler `h` sees them
   * (its workers are the ones that started it; one still starting it counts as starting).
   */
  stats(h?: number): StrategyStats {
    const workers = { starting: 0, warm: 0, idle: 0, failed: this.#state === "failed" ? 1 : 0 };
    let inFlight = h === undefined ? this.#inFlight : 0;
    for (const s of this.#slots) {
      if (h !== undefined) for (const j of s.jobs) if (j.h === h && !j.settled) inFlight++;
      if (s.state === "stopping") continue;
      const warm = s.state === "warm" && (h === undefined || s.open.has(h));
      if (warm) {
        workers.warm++;
        if (s.jobs.length === 0) workers.idle++;
      } else if (s.state === "starting" || (h !== undefined && s.opening.has(h))) workers.starting++;
    }
    let queued = 0;
    for (const j of this.#waiting) if (h === undefined || j.h === h) queued++;
    if (h !== undefined) inFlight += queued;
    return { strategy: this.#o.name, workers, inFlight, queued, replaced: this.#replaced };
  }

  #start(): void {
    this.#state = "running";
    const spawnAll = (): void => {
      if (this.#state !== "running") return;
      for (let home = 0; home < this.#min; home++) this.#spawn(home);
    };
    if (!this.#o.prepare) spawnAll();
    else {
      this.#prepared = this.#o.prepare().then(spawnAll, (err: unknown) => {
        this.#startFailures.giveUp((err as Error)?.message ?? String(err), this.#o.startRetries);
        if (this.#state === "running") this.#fail();
      });
    }
    if (this.#o.max > this.#o.min) {
      this.#shrinkTimer = setInterval(() => this.#shrink(), Math.max(50, this.#o.idleMs / 2));
      this.#shrinkTimer.unref();
    }
  }

  #spawn(home: number | undefined): void {
    const handle = this.#o.spawn(`${this.#o.kind}-${this.#nextWorker++}`);
    const slot: Slot = {
      handle,
      state: "starting",
      home,
      open: new Set(),
      opening: new Set(),
      closing: new Map(),
      jobs: [],
      idleSince: Date.now(),
      lastDone: 0,
    };
    this.#slots.add(slot);
    handle.onMessage = (type, id, meta, body) => this.#message(slot, type, id, meta, body);
    handle.onExit = (exit) => this.#exited(slot, exit);
  }

  #sendOpen(slot: Slot, h: number): void {
    slot.opening.add(h);
    slot.handle.send(Msg.OPEN, 0, { h });
  }

  /** CLOSE to one worker; resolves on CLOSED, or when the worker ends (terminated if it takes too long). */
  #sendClose(slot: Slot, h: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => slot.handle.terminate(), STOP_TIMEOUT_MS + this.#o.graceMs);
      timer.unref();
      slot.closing.set(h, () => {
        clearTimeout(timer);
        resolve();
      });
      slot.handle.send(Msg.CLOSE, 0, { h });
    });
  }

  /** Takes a handler out of the group: its retries stop, and callers still waiting for it to start get `err`. */
  #drop(o: Opened, err: AnyServeError): void {
    if (this.#handlers.get(o.h) !== o) return;
    this.#handlers.delete(o.h);
    for (const t of o.retries) clearTimeout(t);
    for (const w of o.waiters.splice(0)) w.reject(err);
  }

  /** Enough workers have started the handler: its `open()` calls resolve. */
  #checkOpen(o: Opened): void {
    if (o.waiters.length === 0) return;
    let warm = 0;
    for (const s of this.#slots) if (s.state === "warm" && s.open.has(o.h)) warm++;
    if (warm < this.#min) return;
    for (const w of o.waiters.splice(0)) w.resolve();
  }

  /** Sends waiting jobs to the workers that may take them (worker-pick.ts chooses), then grows the pool if the load needs it. */
  #dispatch(): void {
    const waiting = this.#waiting;
    const min = this.#min;
    const perWorker = this.perWorker;
    for (let i = 0; i < waiting.length && hasRoom(this.#slots, this.#o.depth.cheap); ) {
      const job = waiting[i]!;
      const slot = pickSlot(this.#slots, job, job.moves ? 1 : this.#depth(this.#handlers.get(job.h)), min, perWorker);
      if (!slot) {
        i++;
        continue;
      }
      waiting.splice(i, 1);
      job.sendTo(slot);
    }
    this.#grow();
  }

  /** `pool`: starts the workers the load needs at once (a start is fast; no upscale delay). */
  #grow(): void {
    if (this.#state !== "running" || this.#slots.size >= this.#o.max) return;
    const wanted = this.#wanted();
    for (let live = liveWorkers(this.#slots); live < wanted && this.#slots.size < this.#o.max; live++) this.#spawn(undefined);
  }

  /** `pool`: stops workers the load no longer needs, idle ones only, once idle for `idleMs` (never the `min` ones, which keep their places). */
  #shrink(): void {
    for (const s of idleSurplus(this.#slots, this.#wanted(), Date.now(), this.#o.idleMs)) void this.#stopSlot(s, STOP_TIMEOUT_MS);
  }

  /** Workers the load needs now, within `[min, max]` (worker-pool-size.ts). */
  #wanted(): number {
    return workersWanted(this.#waiting, this.#inFlight, this.perWorker, this.#min, this.#o.max);
  }

  #message(slot: Slot, type: number, id: number, meta: Meta, body: Buffer): void {
    switch (type) {
      case Msg.READY:
        slot.state = "warm";
        slot.idleSince = Date.now();
        this.#startFailures.started();
        for (const h of this.#handlers.keys()) this.#sendOpen(slot, h);
        this.#dispatch();
        return;
      case Msg.BOOT_FAILED:
        this.#startFailures.reported(errorOf(meta)?.message ?? "start failed");
        slot.handle.terminate();
        return;
      case Msg.OPENED:
        this.#opened(slot, meta);
        return;
      case Msg.CLOSED: {
        const h = handlerOf(meta);
        if (h === undefined) return;
        slot.open.delete(h);
        const done = slot.closing.get(h);
        slot.closing.delete(h);
        done?.();
        this.#dispatch();
        return;
      }
      case Msg.RESULT:
      case Msg.END: {
        const job = this.#take(slot, id);
        if (!job) return;
        this.#measure(slot, job);
        const err = errorOf(meta);
        // A worker that took our CANCEL answers CANCELLED; the caller gave its own reason (a
        // deadline, say: 504 rather than 499), and that is what the job failed of.
        if (err) this.#settle(job, err.code === "CANCELLED" && job.signal.aborted ? job.abortError() : err);
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
      default: {
        const on = this.#o.onWorkerRequest;
        if (!on) return;
        const jobId = typeof meta?.job === "number" ? meta.job : undefined;
        const job = jobId === undefined ? undefined : slot.jobs.find((j) => j.id === jobId);
        on(slot.handle, type, id, meta, body, job?.signal);
      }
    }
  }

  /** Jobs a worker runs at once: the oldest this many of its unanswered jobs are running. */
  get perWorker(): number {
    return this.#o.perWorker ?? 1;
  }

  /** A stream job's consumer took `cost` bytes: CREDIT the worker once they add up to half a window. */
  #grant(slot: Slot, job: Job, cost: number): void {
    if (job.settled || job.slot !== slot) return;
    job.ungranted += cost;
    if (job.ungranted < WORKER_STREAM_WINDOW_BYTES / 2) return;
    slot.handle.send(Msg.CREDIT, job.id, { n: job.ungranted });
    job.ungranted = 0;
  }

  /** A worker answered OPEN: the handler started there, or its `onStart` failed. */
  #opened(slot: Slot, meta: Meta): void {
    const h = handlerOf(meta);
    if (h === undefined) return;
    slot.opening.delete(h);
    const o = this.#handlers.get(h);
    const err = errorOf(meta);
    if (o && !err) {
      slot.open.add(h);
      o.failures = 0;
      this.#checkOpen(o);
    } else if (o && err) this.#startFailed(slot, o, err);
    // (No `o`: it was closed meanwhile, and the CLOSE sent after the OPEN undoes it.)
    this.#dispatch();
  }

  /** A handler's `onStart` threw in a worker: tried again there after a pause, up to `startRetries` failures in a row. */
  #startFailed(slot: Slot, o: Opened, err: AnyServeError): void {
    const h = o.h;
    o.failures++;
    this.#o.logger.warn(
      { worker: slot.handle.name, handler: h, failures: o.failures, reason: err.message },
      "capability failed to start in a worker",
    );
    if (o.failures >= this.#o.startRetries) {
      this.#failHandler(o, `onStart failed ${o.failures} time(s) in a row: ${err.message}`);
      return;
    }
    const retry = setTimeout(() => {
      o.retries.delete(retry);
      if (this.#handlers.get(h) === o && this.#slots.has(slot) && slot.state === "warm" && !slot.open.has(h) && !slot.opening.has(h)) {
        this.#sendOpen(slot, h);
      }
    }, 100 * o.failures);
    o.retries.add(retry);
  }

  /** A handler that cannot start: its callers and waiting jobs get CAPABILITY_FAILED, workers that did start it stop it. */
  #failHandler(o: Opened, reason: string): void {
    const err = new AnyServeError("CAPABILITY_FAILED", reason);
    this.#drop(o, err);
    this.#failWaiting(o.h, err);
    for (const s of this.#slots) {
      if (s.state !== "stopping" && !s.closing.has(o.h) && (s.open.has(o.h) || s.opening.has(o.h))) void this.#sendClose(s, o.h);
    }
    o.onFailed(reason);
  }

  #failWaiting(h: number, err: AnyServeError): void {
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const job = this.#waiting[i]!;
      if (job.h !== h) continue;
      this.#waiting.splice(i, 1);
      this.#settle(job, err);
    }
  }

  /** Run time: from when the job could start (sent, or its predecessor done) to its answer. */
  #measure(slot: Slot, job: Job): void {
    const now = performance.now();
    const ran = now - Math.max(job.sentAt, slot.lastDone);
    slot.lastDone = now;
    if (job.settled) return; // an abandoned job says little about the handler
    const o = this.#handlers.get(job.h);
    if (o) o.runMs = 0.8 * o.runMs + 0.2 * ran;
  }

  /** Removes an answered job from its worker; the worker may be idle now. */
  #take(slot: Slot, id: number): Job | undefined {
    const at = slot.jobs.findIndex((j) => j.id === id);
    if (at < 0) return undefined;
    const [job] = slot.jobs.splice(at, 1);
    if (slot.jobs.length === 0) slot.idleSince = Date.now();
    clearTimeout(job!.graceTimer);
    // The next job starts now; if its callers already left, it gets the same grace as any abort.
    const next = slot.jobs[this.perWorker - 1];
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
    // Running: it has the grace period; else queued in the worker, which answers CANCELLED at once.
    const at = slot.jobs.indexOf(job);
    if (at >= 0 && at < this.perWorker) this.#armGrace(job, slot);
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
    for (const done of slot.closing.values()) done();
    slot.closing.clear();
    const wasStarting = slot.state === "starting";
    const jobs = slot.jobs.splice(0);
    for (const running of jobs.splice(0, this.perWorker)) this.#settle(running, runningJobError(running, slot.state === "stopping", exit));
    // Jobs queued behind it never started: they go elsewhere (pinned ones to its replacement),
    // unless their body moved with the worker.
    for (const job of jobs.reverse()) {
      const err = queuedJobError(job, exit, this.#state === "running");
      if (err) this.#settle(job, err);
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
      const failures = this.#startFailures.exited(exit.detail);
      this.#o.logger.warn({ worker: slot.handle.name, failures, reason: this.#startFailures.reason }, "worker failed to start");
      if (failures >= this.#o.startRetries) {
        this.#fail();
        return;
      }
    } else {
      this.#replaced++;
      this.#o.logger.warn({ worker: slot.handle.name, reason: exit.detail }, "worker died; replacing it");
    }
    this.#respawnLater(wasStarting ? 100 * this.#startFailures.count : 0, slot.home);
  }

  /** Replaces a dead worker in its place; after a start failure, with a short growing pause (no tight respawn loop). */
  #respawnLater(delayMs: number, home: number | undefined): void {
    const again = (): void => {
      this.#respawns.delete(timer);
      if (this.#state !== "running") return;
      if (home !== undefined) this.#spawn(home);
      this.#dispatch();
    };
    const timer = setTimeout(again, delayMs);
    this.#respawns.add(timer);
  }

  /** The workers cannot start: every handler fails with the reason. */
  #fail(): void {
    this.#state = "failed";
    clearInterval(this.#shrinkTimer);
    for (const t of this.#respawns) clearTimeout(t);
    const reason = this.#startFailures.describe(this.#o.kind);
    const err = new AnyServeError("CAPABILITY_FAILED", reason);
    for (const job of this.#waiting.splice(0)) this.#settle(job, err);
    for (const s of this.#slots) s.handle.terminate();
    for (const o of [...this.#handlers.values()]) {
      this.#drop(o, err);
      o.onFailed(reason);
    }
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
