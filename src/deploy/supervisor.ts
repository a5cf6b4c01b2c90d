/**
 * Keeps replica processes alive: a replica that exits unexpectedly is restarted after a back-off
 * that doubles with each recent crash (0.25 s, 0.5 s, … capped at 30 s); one that crashes
 * `CRASH_LOOP_LIMIT` times within `CRASH_LOOP_WINDOW_MS` is reported `crash_looping` and left
 * down, not restarted forever. Stopping sends SIGTERM (the replica drains) and SIGKILL after a
 * grace period, so nothing is left behind.
 */
import type { ChildProcess } from "node:child_process";
import { spawnAnyserve, stopChild } from "../cli/children.js";
import type { Logger } from "../util/logger.js";

export const CRASH_LOOP_LIMIT = 5;
export const CRASH_LOOP_WINDOW_MS = 60_000;
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 30_000;

export type ReplicaState = "starting" | "running" | "restarting" | "crash_looping" | "stopping" | "stopped";

export interface ReplicaSpec {
  replicaId: string;
  service: string;
  /** `anyserve` arguments, e.g. `["start", "--app", …]`. */
  args: string[];
  env: NodeJS.ProcessEnv;
}

export interface ReplicaStatus {
  replicaId: string;
  service: string;
  state: ReplicaState;
  pid: number | null;
  restarts: number;
  lastExit: string | null;
  http: string | null;
  grpc: string | null;
}

export class ReplicaProcess {
  readonly spec: ReplicaSpec;
  #state: ReplicaState = "starting";
  #child: ChildProcess | undefined;
  #ready: Record<string, unknown> = {};
  #crashes: number[] = [];
  #restarts = 0;
  #lastExit: string | null = null;
  /** Why replace() killed the process, until its exit is seen. */
  #replacing: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #logger: Logger;
  readonly #onExit: (p: ReplicaProcess) => void;
  #settle: (() => void) | undefined;
  #settled: Promise<void> | undefined;

  constructor(spec: ReplicaSpec, logger: Logger, onExit: (p: ReplicaProcess) => void) {
    this.spec = spec;
    this.#logger = logger;
    this.#onExit = onExit;
  }

  get state(): ReplicaState {
    return this.#state;
  }

  /**
   * Starts the process; resolves once it is serving, or once it has been given up as
   * crash-looping (a start that fails is retried like any crash).
   */
  start(): Promise<void> {
    if (!this.#settled) {
      this.#settled = new Promise((resolve) => (this.#settle = resolve));
      void this.#spawn();
    }
    return this.#settled;
  }

  async stop(graceMs = 30_000): Promise<void> {
    clearTimeout(this.#timer);
    if (this.#state === "stopped") return;
    this.#state = "stopping";
    if (this.#child) await stopChild(this.#child, graceMs);
    this.#state = "stopped";
  }

  /**
   * Kills a running process that is alive but unhealthy (SIGKILL: a stuck process cannot drain);
   * its exit restarts it like a crash, with back-off and the crash-loop limit.
   */
  replace(reason: string): void {
    if (this.#state !== "running" || this.#child === undefined) return;
    this.#logger.warn({ replica: this.spec.replicaId, pid: this.#child.pid, reason }, "killing the replica to replace it");
    this.#replacing = `replaced, ${reason}`;
    this.#child.kill("SIGKILL");
  }

  status(): ReplicaStatus {
    return {
      replicaId: this.spec.replicaId,
      service: this.spec.service,
      state: this.#state,
      pid: this.#child?.pid ?? null,
      restarts: this.#restarts,
      lastExit: this.#lastExit,
      http: typeof this.#ready.http === "string" ? this.#ready.http : null,
      grpc: typeof this.#ready.grpc === "string" ? this.#ready.grpc : null,
    };
  }

  async #spawn(): Promise<void> {
    this.#state = this.#restarts === 0 ? "starting" : "restarting";
    try {
      const info = await spawnAnyserve(this.spec.replicaId, this.spec.args, { env: this.spec.env, echo: true });
      if (this.#stopRequested()) {
        // stop() came while the process was starting.
        await stopChild(info.process);
        return;
      }
      this.#child = info.process;
      this.#ready = info.ready;
      this.#state = "running";
      this.#settle?.();
      info.process.once("exit", (code, signal) => this.#exited(`${signal ?? `code ${code}`}`));
    } catch (err) {
      const lines = (err as Error).message.split("\n").filter(Boolean);
      this.#exited(`failed to start: ${lines.slice(-3).join(" | ").slice(0, 500)}`);
    }
  }

  #stopRequested(): boolean {
    return this.#state === "stopping" || this.#state === "stopped";
  }

  #exited(why: string): void {
    this.#child = undefined;
    this.#lastExit = this.#replacing === undefined ? why : `${this.#replacing} (${why})`;
    this.#replacing = undefined;
    if (this.#stopRequested()) {
      this.#settle?.();
      return;
    }
    this.#onExit(this);
    const now = Date.now();
    this.#crashes = [...this.#crashes.filter((t) => now - t < CRASH_LOOP_WINDOW_MS), now];
    if (this.#crashes.length >= CRASH_LOOP_LIMIT) {
      this.#state = "crash_looping";
      this.#logger.error(
        { replica: this.spec.replicaId, crashes: this.#crashes.length, lastExit: why },
        "replica is crash-looping; not restarting it",
      );
      this.#settle?.();
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.#crashes.length - 1));
    this.#state = "restarting";
    this.#logger.warn({ replica: this.spec.replicaId, exit: why, restartInMs: delay }, "replica exited; restarting");
    this.#timer = setTimeout(() => {
      this.#restarts++;
      void this.#spawn().catch(() => undefined);
    }, delay);
  }
}
