/**
 * The worker side of the protocol, shared by worker threads and child processes: takes RUN
 * messages, runs them one after another with the task runner, answers each with exactly one
 * terminal message (RESULT or END), and honours CANCEL and STOP.
 *
 * Jobs run strictly in arrival order, one at a time, even for async handlers: the strategy may
 * pipeline a second job into the worker so it never idles on a round trip, and because the
 * oldest unanswered job is always the one running, the strategy knows which jobs had not started
 * when a worker dies — those are sent elsewhere instead of failing.
 *
 * Answers of quick jobs are held while more jobs wait (up to 0.5 ms), so a burst of them goes back
 * as one message; a slow job's answer, a stream's chunk and anything else go out at once.
 */
import { AnyServeError } from "../errors.js";
import { runBatchTask, runHook, runStreamTask, runTask, type RunEnv } from "./run-task.js";
import type { JobMode, Task, TaskHooks } from "./task.js";
import type { Outbox } from "./thread-port.js";
import { answerMeta } from "../transport/call-meta.js";
import { batchResultMessage, errorMetaOf, Msg, tasksOf, type Meta } from "./worker-protocol.js";
import { chunkCost } from "../transport/frames.js";
import type { EncodedBody } from "../protocol/types.js";
import { Cancellation } from "../util/cancel.js";
import { Gate } from "../util/gate.js";

/** How long a finished job's answer may wait for the next ones before it is sent anyway (ms). */
const HOLD_MS = 0.1;

interface Job {
  id: number;
  mode: JobMode;
  tasks: Task[];
  controllers: Cancellation[];
  /** A stream's window left (bytes, `chunkCost`); Infinity without flow control. */
  window: number;
  /** Where a stream whose window is used up waits (credit comes, or it is cancelled). */
  room?: Gate | undefined;
}

export class WorkerRuntime {
  readonly #env: RunEnv;
  readonly #handler: number;
  readonly #name: string;
  readonly #out: Outbox;
  readonly #queue: Job[] = [];
  #running: Job | undefined;
  /** performance.now() when the running job started. */
  #startedAt = 0;
  #stopping = false;
  /** Called after STOPPED is sent: the transport closes and the worker exits. */
  onStopped: () => void = () => undefined;

  constructor(env: RunEnv, handler: number, name: string, out: Outbox) {
    this.#env = env;
    this.#handler = handler;
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

  /** Runs `onStart`; answers READY, or BOOT_FAILED and resolves false. */
  async boot(): Promise<boolean> {
    try {
      await runHook(this.#env, this.#handler, "onStart", this.#name);
      this.#send(Msg.READY, 0, null);
      return true;
    } catch (err) {
      this.#send(Msg.BOOT_FAILED, 0, errorMetaOf(AnyServeError.from(err, "CAPABILITY_FAILED")));
      return false;
    }
  }

  receive(type: number, id: number, meta: Meta, body: Buffer): void {
    switch (type) {
      case Msg.RUN: {
        let parsed: { mode: JobMode; tasks: Task[]; window: number };
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
        if (job?.id !== id || typeof n !== "number" || n <= 0) return; // a stream that ended meanwhile
        job.window += n;
        if (job.window > 0) this.#release(job);
        return;
      }
      case Msg.STOP:
        this.#stopping = true;
        this.#next();
        return;
      default:
        // Unknown types are ignored so a newer strategy can add messages.
        return;
    }
  }

  #cancel(id: number, index: number | undefined): void {
    const reason = new AnyServeError("CANCELLED", "the request was cancelled");
    const running = this.#running;
    if (running?.id === id) {
      for (const [i, c] of running.controllers.entries()) if (index === undefined || i === index) c.abort(reason);
      this.#release(running); // a stream waiting for credit sees its abort
      return;
    }
    const at = this.#queue.findIndex((j) => j.id === id);
    if (at < 0) return;
    const job = this.#queue[at]!;
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
      void this.#run(job).finally(() => {
        this.#running = undefined;
        this.#next();
      });
      return;
    }
    if (this.#stopping) void this.#stop();
  }

  async #stop(): Promise<void> {
    this.#stopping = false;
    await runHook(this.#env, this.#handler, "onStop", this.#name).catch((err: unknown) =>
      this.#env.logger.warn({ err: (err as Error)?.message, worker: this.#name }, "onStop failed"),
    );
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
    if (job.window > 0 || job.controllers[0]!.signal.aborted) return;
    return (job.room ??= new Gate()).wait();
  }

  #release(job: Job): void {
    job.room?.open();
  }

  async #run(job: Job): Promise<void> {
    const { id, tasks, controllers } = job;
    const hooks: TaskHooks = { lowerDeadline: (i, dl) => this.#send(Msg.DEADLINE, id, { i, dl }) };
    const env = this.#env;
    try {
      if (job.mode === "batch") {
        const out = await runBatchTask(
          env,
          this.#handler,
          tasks,
          controllers.map((c) => c.signal),
          hooks,
        );
        const msg = batchResultMessage(out);
        this.#answer(Msg.RESULT, id, msg.meta, msg.body);
      } else if (job.mode === "stream") {
        await runStreamTask(env, this.#handler, tasks[0]!, controllers[0]!.signal, (chunk) => this.#chunk(job, chunk), hooks);
        this.#answer(Msg.END, id, {});
      } else {
        const out = await runTask(env, this.#handler, tasks[0]!, controllers[0]!.signal, hooks);
        this.#answer(Msg.RESULT, id, answerMeta(out), out.body);
      }
    } catch (err) {
      this.#answer(job.mode === "stream" ? Msg.END : Msg.RESULT, id, errorMetaOf(err));
    }
  }
}
