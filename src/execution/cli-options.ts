/**
 * `anyserve start` flags for execution (docs/config.md lists them with their defaults). Until the
 * deployment config exists they set one value for every capability of the replica.
 */
import { InvalidArgumentError, type Command } from "commander";
import type { ExecutionConfig } from "./config.js";
import { strategyNames } from "./index.js";

export interface ExecutionFlags {
  strategy: string;
  threads?: number;
  maxThreads?: number;
  queueSize: number;
  batchSize: number;
  batchWaitMs: number;
  idleTimeout: number;
  memoryMb?: number;
  abortGrace: number;
  workerEnv?: string;
  lazy?: boolean;
}

function int(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name}: expected an integer from ${min} to ${max}, got '${v}'`);
    return n;
  };
}

function seconds(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name}: expected a number of seconds ≥ 0, got '${v}'`);
    return n;
  };
}

function strategy(v: string): string {
  if (!strategyNames().includes(v)) throw new InvalidArgumentError(`--strategy: expected one of ${strategyNames().join(", ")}, got '${v}'`);
  return v;
}

export function addExecutionOptions(cmd: Command): Command {
  return cmd
    .option("--strategy <name>", `how handlers run: ${strategyNames().join(" | ")}`, strategy, "async")
    .option(
      "--threads <n>",
      "thread_count: async concurrency, multi/process workers, pool minimum (default: 64 for async, 1 for pool, one per CPU for multi/process)",
      int("--threads", 1, 1024),
    )
    .option("--max-threads <n>", "pool: max_thread_count (default: one per CPU)", int("--max-threads", 1, 1024))
    .option(
      "--queue-size <n>",
      "requests that may wait per capability beyond those running; more get 503 QUEUE_FULL",
      int("--queue-size", 0, 1_000_000),
      1000,
    )
    .option("--batch-size <n>", "largest batch for {batch: true} handlers", int("--batch-size", 1, 4096), 1)
    .option("--batch-wait-ms <ms>", "longest a batch waits to fill after its first request", int("--batch-wait-ms", 0, 60_000), 5)
    .option(
      "--idle-timeout <seconds>",
      "lazy capabilities stop their workers after this long without requests",
      seconds("--idle-timeout"),
      300,
    )
    .option("--memory-mb <mb>", "heap limit per worker thread / process (multi, pool, process)", int("--memory-mb", 16, 1 << 20))
    .option(
      "--abort-grace <seconds>",
      "how long a worker may ignore an abort (deadline, disconnect) before it is terminated and replaced",
      seconds("--abort-grace"),
      1,
    )
    .option("--worker-env <names>", "process: comma-separated environment variables to pass to worker processes")
    .option("--lazy", "every capability starts cold: workers start on the first request and stop after --idle-timeout");
}

export function executionFromFlags(o: ExecutionFlags): Partial<ExecutionConfig> {
  return {
    strategy: o.strategy,
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.maxThreads !== undefined ? { maxThreads: o.maxThreads } : {}),
    queueSize: o.queueSize,
    batchSize: o.batchSize,
    batchWaitMs: o.batchWaitMs,
    idleTimeoutMs: Math.max(1, Math.round(o.idleTimeout * 1000)),
    ...(o.memoryMb !== undefined ? { memoryMb: o.memoryMb } : {}),
    graceMs: Math.round(o.abortGrace * 1000),
    workerEnv: (o.workerEnv ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    lazy: o.lazy === true,
  };
}
