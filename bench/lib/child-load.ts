/**
 * Load generators in child processes, for the scenarios autocannon cannot drive: gRPC
 * (bench/clients/grpc-load.ts, forked once and driven over IPC) and the SDK client
 * (bench/clients/sdk-load.ts, one process per run, printing one JSON line). Both report
 * `{ requests, errors, rps, p50_us, p99_us }`, turned here into a {@link LoadResult}.
 */
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import type { LoadResult } from "./load.js";
import { ROOT, forkServer, spawnTracked } from "./procs.js";

/** What a child load generator reports for one run. */
export interface ChildLoadLine {
  requests: number;
  errors: number;
  rps: number;
  p50_us: number;
  p99_us: number;
}

function toLoadResult(r: ChildLoadLine, seconds: number): LoadResult {
  return { rps: r.rps, p50Us: r.p50_us, p99Us: r.p99_us, requests: r.requests, errors: r.errors, seconds };
}

type Reply = { phase?: string; result?: ChildLoadLine; checked?: number; error?: string };

/** The gRPC load generator: one warm child process serving one run at a time. */
export class GrpcLoad {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<GrpcLoad> {
    const { child } = await forkServer<{ ready: boolean }>("grpc-load", path.join(ROOT, "bench/clients/grpc-load.ts"));
    return new GrpcLoad(child);
  }

  /** Warm-up, then `onStart()` (the CPU meters start), then the measured run. */
  run(target: string, connections: number, seconds: number, warmup: number, onStart: () => void): Promise<LoadResult> {
    return this.ask({ run: { target, connections, seconds, warmup } }, (m) => {
      if (m.phase === "measure") {
        onStart();
        return undefined;
      }
      return m.result && toLoadResult(m.result, seconds);
    });
  }

  /** One call; resolves with the answer's size in bytes. */
  check(target: string): Promise<number> {
    return this.ask({ check: target }, (m) => m.checked);
  }

  private ask<T>(msg: object, take: (m: Reply) => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: Reply): void => {
        if (m.error) {
          done();
          reject(new Error(`grpc-load: ${m.error}`));
          return;
        }
        const v = take(m);
        if (v !== undefined) {
          done();
          resolve(v);
        }
      };
      const onExit = (): void => {
        done();
        reject(new Error("grpc-load exited"));
      };
      const done = (): void => {
        this.child.off("message", onMessage);
        this.child.off("exit", onExit);
      };
      this.child.on("message", onMessage);
      this.child.once("exit", onExit);
      this.child.send(msg);
    });
  }
}

/**
 * Runs `bench/clients/sdk-load.ts <args> --connections N --duration S --warmup W` once and reads
 * its JSON line. The child's warm-up cannot be told apart from its run from outside, so the
 * server CPU of these scenarios is not measured (`onStart` is never called).
 */
export function runSdkLoad(args: string[], connections: number, seconds: number, warmup: number): Promise<LoadResult> {
  const log: string[] = [];
  const child = spawnTracked(
    "sdk-load",
    process.execPath,
    [
      "--import",
      "tsx",
      path.join(ROOT, "bench/clients/sdk-load.ts"),
      ...args,
      "--connections",
      String(connections),
      "--duration",
      String(seconds),
      "--warmup",
      String(warmup),
    ],
    log,
    "pipe",
  );
  let last: ChildLoadLine | undefined;
  createInterface({ input: child.stdout! }).on("line", (l) => {
    if (!l.startsWith("{")) return;
    try {
      last = JSON.parse(l) as ChildLoadLine;
    } catch {
      /* not ours */
    }
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, sig) => {
      if (code === 0 && last && typeof last.rps === "number") resolve(toLoadResult(last, seconds));
      else {
        const last =
          log
            .filter((l) => l.trim() !== "[sdk-load]")
            .pop()
            ?.replace(/^\[sdk-load\] /, "") ?? "no output";
        reject(new Error(`sdk-load exited (${sig ?? code}) without a result: ${last}\n${args.join(" ")}\n${log.join("\n")}`));
      }
    });
  });
}
