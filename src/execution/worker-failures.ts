/**
 * What a worker's end means (worker-group.ts): for the jobs it held, and for the group's count of
 * failed starts.
 *
 * - **Known running job.** Workers run their jobs in order (worker-runtime.ts), so the oldest
 *   `perWorker` unanswered jobs of a worker are the ones running: when it dies those fail
 *   ({@link runningJobError}: 502 WORKER_CRASHED, or WORKER_OUT_OF_MEMORY), and the others, which
 *   never started, run elsewhere ({@link queuedJobError}) unless their body moved with the worker.
 * - **Start failures.** A worker that ends before it is READY (or answers BOOT_FAILED) is a failed
 *   start; {@link StartFailures} counts them in a row with their reason, and says why the group
 *   gives up once there are `startRetries` of them.
 *
 * @example
 * ```ts
 * const [running, queued] = [jobs.slice(0, perWorker), jobs.slice(perWorker)];
 * for (const j of running) j.settle(runningJobError(j, slot.state === "stopping", exit));
 * for (const j of queued) { const err = queuedJobError(j, exit, groupRunning); if (err) j.settle(err); else requeue(j); }
 * ```
 */
import { AnyServeError } from "../errors.js";
import type { WorkerExit } from "./handle.js";
import type { Job } from "./job.js";

/** The error of a job its worker was running when it ended (`stopping`: the group stopped it). */
export function runningJobError(job: Job, stopping: boolean, exit: WorkerExit): AnyServeError {
  if (job.signal.aborted) return job.abortError();
  if (stopping) return new AnyServeError("SHUTTING_DOWN", `${exit.detail} while stopping, before request '${job.rid}' finished`);
  const code = exit.reason === "oom" ? "WORKER_OUT_OF_MEMORY" : "WORKER_CRASHED";
  return new AnyServeError(code, `${exit.detail} while running request '${job.rid}'`);
}

/**
 * The error of a job queued in a worker that ended, which never started there — or undefined: it
 * runs elsewhere (`requeue`: the group is running). A job whose body moved to the worker cannot.
 */
export function queuedJobError(job: Job, exit: WorkerExit, requeue: boolean): AnyServeError | undefined {
  if (job.signal.aborted) return job.abortError();
  if (job.moves || !requeue) return new AnyServeError("WORKER_CRASHED", `${exit.detail} before it started request '${job.rid}'`);
  return undefined;
}

/** Failed worker starts in a row, and why: the reason a worker last reported, else how the first of them ended. */
export class StartFailures {
  count = 0;
  #reason = "";

  /** A worker started: the count begins again. */
  started(): void {
    this.count = 0;
    this.#reason = "";
  }

  /** A worker said why it could not start (BOOT_FAILED); its exit follows and is counted then. */
  reported(reason: string): void {
    this.#reason = reason;
  }

  /** A worker ended before it was ready; returns the failures in a row. */
  exited(detail: string): number {
    this.count++;
    if (!this.#reason) this.#reason = detail;
    return this.count;
  }

  /** Nothing can start (the group's `prepare` failed): as many failures as the group allows. */
  giveUp(reason: string, startRetries: number): void {
    this.#reason = reason;
    this.count = startRetries;
  }

  get reason(): string {
    return this.#reason;
  }

  /** Why the group gave up, naming the workers' kind (`thread`, `process`). */
  describe(kind: string): string {
    return `${kind} workers failed to start ${this.count} time(s) in a row: ${this.#reason}`;
  }
}
