/**
 * One worker as the worker group sees it, whatever it is made of (a thread, a child process):
 * send messages, kill it, hear its messages and its end.
 */
import type { Meta } from "./worker-protocol.js";

/** Why a worker ended: `exit` (it exited or crashed), `oom` (over its memory limit). */
export interface WorkerExit {
  reason: "exit" | "oom";
  detail: string;
}

export interface WorkerHandle {
  readonly name: string;
  /** True when bodies sent to this worker are moved (detached here) rather than copied. */
  readonly transfersBodies: boolean;
  send(type: number, id: number, meta: Meta, body?: Buffer): void;
  /** Kills the worker at once; `onExit` follows. */
  terminate(): void;
  onMessage: (type: number, id: number, meta: Meta, body: Buffer) => void;
  /** Called exactly once. */
  onExit: (exit: WorkerExit) => void;
  /** Fires when the worker has ended (a process worker: what it asked the replica for stops with it). */
  readonly ended?: AbortSignal;
}

/** Makes a new worker named `name` (e.g. `thread-3`). */
export type SpawnWorker = (name: string) => WorkerHandle;

/** Where the worker entry files are, in the build (`.js`) or under tsx in development (`.ts`). */
export function workerEntry(base: string, file: string): { url: URL; typescript: boolean } {
  const typescript = base.endsWith(".ts");
  return { url: new URL(`./${file}${typescript ? ".ts" : ".js"}`, base), typescript };
}
