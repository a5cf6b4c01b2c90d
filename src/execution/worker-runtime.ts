/**
 * The worker side of the protocol, shared by worker threads and child processes: a worker serves
 * every handler of the app — the replica's capabilities share their workers. It starts a handler
 * (its `onStart`) on OPEN and stops it (`onStop`) on CLOSE, takes RUN messages for the handlers
 * it started, runs them one after another with the task runner, answers each with exactly one
 * terminal message (RESULT or END), and honours CANCEL and STOP.
 *
 * Jobs run strictly in arrival order, one at a time, even for async handlers: the strategy may
 * pipeline a second job into the worker so it never idles on a round trip, and because the
 * oldest unanswered job is always the one running, the strategy knows which jobs had not started
 * when a worker dies — those are sent elsewhere instead of failing. OPEN and CLOSE take their
 * turn in the same order, so a handler's `onStop` runs after the jobs sent to it before.
 *
 * Answers of quick jobs are held while more jobs wait (up to 0.5 ms), so a burst of them goes back
 * as one message; a slow job's answer, a stream's chunk and anything else go out at once.
 */
import { AnyServeError } from "../errors.js";
import { runBatchTask, runHook, runStreamTask, runTask, type RunEnv } from "./run-task.js";
import type { JobMode, Task, TaskHooks } from "./task.js";
import type { Outbox } from "./thread-port.js";
import { answerMeta } from "../transport/call-meta.js";
import { batchResultMessage, errorMetaOf, handlerOf, Msg, tasksOf, type Meta } from "./worker-protocol.js";
import { chunkCost } from "../transport/frames.js";
import type { EncodedBody } from "../protocol/types.js";
import { Cancellation } from "../util/cancel.js";
import { Gate } from "../util/gate.js";

/** How long a finished job's answer may wait for the next ones before it is sent anyway (ms). */
const HOLD_MS = 0.1;

interface Job {
  id: number;
  h: number;
  mode: JobMode;
  tasks: Task[];
  controllers: Cancellation[];
  /** A stream's window left (bytes, `chunkCost`); Infinity without flow control. */
  window: number;
  /** Where a stream whose window is used up waits (credit comes, or it is cancelled). */
  room?: Gate | undefined;
}

/** OPEN or CLOSE of handler `h`, waiting its turn behind the jobs sent before it. */
interface Control {
  id: 0;
  control: "open" | "close";
  h: number;
}

export class WorkerRuntime {
  readonly #env: RunEnv;
  readonly #name: string;
  readonly #out: Outbox;
  readonly #queue: (Job | Control)[] = [];
  /** Handlers whose `onStart` ran here, in the order they started. */
  readonly #open = new Set<number>();
  #running: Job | Control | undefined;
  /** performance.now() when the running job started. */
  #startedAt = 0;
  #stopping = false;
  /** Called after STOPPED is sent: the transport closes and the worker exits. */
  onStopped: () => void = () => undefined;
  /** A message of a type the runtime does not handle itself: an answer to the worker's own request. */
  onAnswer: (type: number, id: number, meta: Meta, body: Buffer) => void = () => undefined;
  /** A job answered: what it asked the replica for and left open ends with it (replica-caller.ts). */
  onJobEnd: (id: number) => void = () => undefined;

  /** The id of the job running now, if one is (a control — OPEN, CLOSE — is not a job). */
  get runningJob(): number | undefined {
    const r = this.#running;
    return r !== undefined && "controllers" in r ? r.id : undefined;
  }

  constructor(env: RunEnv, name: string, out: Outbox) {
    this.#env = env;
    this.#name = name;
    this.#out = out;
  }

  /** Sends now (worker-level messages, deadlines, stream chunks). */
  #send(type: number, id: number, meta: Meta, body?: Buffer): void {
    this.#out.send(type, id, meta, body);
    this.#out.flush();
  }

  /**
   * A job's answer. It goes out at once unless the job was quick and more are queued: then it
   * waits (at most HOLD_MS) for theirs, so a burst of quick jobs goes back as one message, while a
   * slow job's answer is never held behind the next job.
   */
  #answer(type: number, id: number, meta: Meta, body?: Buffer): void {
    this.#out.send(type, id, meta, body);
    const now = performance.now();
    const quick = now - this.#startedAt < HOLD_MS;
    if (!quick || this.#queue.length === 0 || now - this.#out.waitingSince > HOLD_MS) this.#out.flush();
  }

  /** The app is loaded: answers READY (handlers start on OPEN). */
  boot(): void {
    this.#send(Msg.READY, 0, null);
  }

  receive(type: number, id: number, meta: Meta, body: Buffer): void {
    switch (type) {
      case Msg.RUN: {
        let parsed: { h: number; mode: JobMode; tasks: Task[]; window: number };
        try {
          parsed = tasksOf(meta, body);
        } catch (err) {
          this.#answer(Msg.RESULT, id, errorMetaOf(err));
          return;
        }
        this.#queue.push({ id, ...parsed, controllers: parsed.tasks.map(() => new Cancellation()) });
        this.#next();
        return;
      }
      case Msg.CANCEL:
        this.#cancel(id, typeof meta?.i === "number" ? meta.i : undefined);
        return;
      case Msg.CREDIT: {
        const job = this.#running;
        const n = meta?.n;
        // A stream that ended meanwhile, or a control running: nothing to credit.
        if (job === undefined || !("controllers" in job) || job.id !== id || typeof n !== "number" || n <= 0) return;
        job.window += n;
        if (job.window > 0) this.#release(job);
        return;
      }
      case Msg.OPEN:
      case Msg.CLOSE: {
        const h = handlerOf(meta);
        if (h === undefined) return;
        this.#queue.push({ id: 0, control: type === Msg.OPEN ? "open" : "close", h });
        this.#next();
        return;
      }
      case Msg.STOP:
        this.#stopping = true;
        this.#next();
        return;
      default:
        // The replica's answers to what the worker asked (CALL_RESULT: replica-caller.ts) go to
        // whoever asked; other unknown types are ignored so a newer strategy can add messages.
        this.onAnswer(type, id, meta, body);
        return;
    }
  }

  #cancel(id: number, index: number | undefined): void {
    const reason = new AnyServeError("CANCELLED", "the request was cancelled");
    const running = this.#running;
    if (running !== undefined && "controllers" in running && running.id === id) {
      for (const [i, c] of running.controllers.entries()) if (index === undefined || i === index) c.abort(reason);
      this.#release(running); // a stream waiting for credit sees its abort
      return;
    }
    const at = this.#queue.findIndex((j) => j.id === id);
    if (at < 0) return;
    const job = this.#queue[at] as Job;
    if (index !== undefined && job.tasks.length > 1) {
      job.controllers[index]?.abort(reason);
      return;
    }
    // Not started: answer at once so the strategy's accounting stays exact.
    this.#queue.splice(at, 1);
    this.#answer(job.mode === "stream" ? Msg.END : Msg.RESULT, id, errorMetaOf(reason));
  }

  #next(): void {
    if (this.#running) return;
    const job = this.#queue.shift();
    if (job) {
      this.#running = job;
      this.#startedAt = performance.now();
      void ("control" in job ? this.#control(job) : this.#run(job)).finally(() => {
        this.#running = undefined;
        if (!("control" in job)) this.onJobEnd(job.id);
        this.#next();
      });
      return;
    }
    if (this.#stopping) void this.#stop();
  }

  async #stop(): Promise<void> {
    this.#stopping = false;
    for (const h of [...this.#open]) await this.#onStop(h);
    this.#send(Msg.STOPPED, 0, null);
    this.onStopped();
  }

  /**
   * Sends one streamed chunk; once the job's window is used up, returns a promise that settles
   * when the replica grants credit (its consumer took the chunks) or the job is cancelled, so the
   * handler's next chunk waits (runStreamTask does not pull its generator meanwhile).
   */
  #chunk(job: Job, chunk: EncodedBody): void | Promise<void> {
    const cost = chunkCost(chunk.body); // before the send: a transferred body is detached by it
    this.#send(Msg.CHUNK, job.id, answerMeta(chunk), chunk.body);
    job.window -= cost;
    if (job.window > 0 || job.controllers[0]!.aborted) return;
    return (job.room ??= new Gate()).wait();
  }

  #release(job: Job): void {
    job.room?.open();
  }

  /** OPEN runs the handler's `onStart` (a throw is reported, and the replica may send OPEN again); CLOSE its `onStop`. */
  async #control(c: Control): Promise<void> {
    if (c.control === "close") {
      if (this.#open.has(c.h)) await this.#onStop(c.h);
      this.#send(Msg.CLOSED, 0, { h: c.h });
      return;
    }
    if (this.#open.has(c.h)) return this.#send(Msg.OPENED, 0, { h: c.h });
    try {
      await runHook(this.#env, c.h, "onStart", this.#name);
      this.#open.add(c.h);
      this.#send(Msg.OPENED, 0, { h: c.h });
    } catch (err) {
      this.#send(Msg.OPENED, 0, { h: c.h, ...errorMetaOf(AnyServeError.from(err, "CAPABILITY_FAILED")) });
    }
  }

  async #onStop(h: number): Promise<void> {
    this.#open.delete(h);
    await runHook(this.#env, h, "onStop", this.#name).catch((err: unknown) =>
      this.#env.logger.warn({ err: (err as Error)?.message, worker: this.#name, handler: h }, "onStop failed"),
    );
  }

  async #run(job: Job): Promise<void> {
    const { id, h, tasks, controllers } = job;
    const hooks: TaskHooks = { lowerDeadline: (i, dl) => this.#send(Msg.DEADLINE, id, { i, dl }) };
    const env = this.#env;
    try {
      if (!this.#open.has(h)) {
        throw new AnyServeError("INTERNAL", `worker ${this.#name}: handler #${h} was not started here (no OPEN before its jobs)`);
      }
      if (job.mode === "batch") {
        // The Cancellations themselves: a real AbortSignal is made only if a handler asks for ctx.signal.
        const out = await runBatchTask(env, h, tasks, controllers, hooks);
        const msg = batchResultMessage(out);
        this.#answer(Msg.RESULT, id, msg.meta, msg.body);
      } else if (job.mode === "stream") {
        await runStreamTask(env, h, tasks[0]!, controllers[0]!, (chunk) => this.#chunk(job, chunk), hooks);
        this.#answer(Msg.END, id, {});
      } else {
        const out = await runTask(env, h, tasks[0]!, controllers[0]!, hooks);
        this.#answer(Msg.RESULT, id, answerMeta(out), out.body);
      }
    } catch (err) {
      this.#answer(job.mode === "stream" ? Msg.END : Msg.RESULT, id, errorMetaOf(err));
    }
  }
}
