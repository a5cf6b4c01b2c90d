/**
 * `anyserve` child processes, as the local replica handle (`local-replica.ts`) runs them: each runs
 * `anyserve <args>` with the serving node flags, announces itself with an `ANYSERVE_READY {json}`
 * line, and is stopped with SIGTERM (it drains), then SIGKILL after a grace period, so nothing is
 * left behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { servingExecArgv } from "../util/node-flags.js";

/** The CLI's entry point (a path, not an import: deploy does not depend on the cli module). */
export const CLI_ENTRY = fileURLToPath(new URL("../cli/main.js", import.meta.url));

export interface AnyserveChild {
  process: ChildProcess;
  /** The child's ready line; rejects with the last lines it printed when it exits or times out first. */
  ready: Promise<Record<string, unknown>>;
}

export interface SpawnOptions {
  /** Forward the child's log lines to ours, prefixed with its name. */
  echo?: boolean;
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Node flags for this child besides the serving ones (they win: given later). */
  execArgv?: string[];
}

/**
 * Starts `anyserve <args>`. The process is returned at once (so a start can be stopped before it is
 * ready); `ready` settles with its ready line or with what it printed.
 */
export function spawnAnyserve(name: string, args: string[], o: SpawnOptions = {}): AnyserveChild {
  // stdin is a pipe the child never reads: when we die, however we die, it closes and the
  // child shuts itself down (ANYSERVE_EXIT_WITH_PARENT), so no replica outlives its supervisor.
  const child = spawn(process.execPath, [...servingExecArgv(process.execArgv), ...(o.execArgv ?? []), CLI_ENTRY, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...(o.env ?? process.env), ANYSERVE_EXIT_WITH_PARENT: "1" },
  });
  child.stdin!.on("error", () => undefined);
  const readyTimeoutMs = o.readyTimeoutMs ?? 30_000;
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const tail: string[] = [];
    const remember = (line: string): void => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      if (o.echo) process.stderr.write(`[${name}] ${line}\n`);
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not start within ${readyTimeoutMs} ms:\n${tail.join("\n")}`));
    }, readyTimeoutMs);
    createInterface({ input: child.stderr! }).on("line", remember);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.startsWith("ANYSERVE_READY ")) {
        clearTimeout(timer);
        resolve(JSON.parse(line.slice(15)) as Record<string, unknown>);
      } else {
        remember(line);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? code}) before it was ready:\n${tail.join("\n")}`));
    });
  });
  return { process: child, ready };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
