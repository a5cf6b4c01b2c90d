/**
 * Child processes of the benchmark: every server runs in its own process so that the load
 * generator (autocannon, in the parent) never shares an event loop with what it measures.
 *
 * Every child started here is tracked, and {@link installCleanup} makes sure they all die when the
 * suite ends — normally, on Ctrl-C / SIGTERM / SIGHUP, or on an error — so a run leaves no orphans.
 * Our own servers (bench/servers) also get an IPC channel and exit when it disconnects, which covers
 * even a SIGKILLed parent; the anyserve CLI processes and nginx are stopped by signal.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import net, { type AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { SERVING_NODE_FLAGS } from "../../src/util/node-flags.js";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = path.join(ROOT, "bin", "anyserve.js");

/** Every live child, in start order (stopped in reverse: replicas before the API server they talk to). */
const children: ChildProcess[] = [];

const isAlive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

/** Set once the suite is on its way out (signal or crash): nothing new may start then. */
let exiting = false;

/** Resolves never once the suite is stopping (the exit is under way), at once otherwise. */
export const unlessExiting = (): Promise<void> => (exiting ? new Promise<void>(() => undefined) : Promise.resolve());

function track(child: ChildProcess, name: string, log: string[]): ChildProcess {
  if (exiting) {
    child.kill("SIGKILL");
    throw new Error(`not starting ${name}: the suite is stopping`);
  }
  children.push(child);
  child.once("exit", () => children.splice(children.indexOf(child), 1));
  // Keep the last lines of output for error messages; never let a full pipe block the child.
  const keep = (l: string): void => {
    log.push(`[${name}] ${l}`);
    if (log.length > 50) log.shift();
  };
  if (child.stderr) createInterface({ input: child.stderr }).on("line", keep);
  return child;
}

function waitFor<T>(child: ChildProcess, what: string, log: string[], timeoutMs: number, arm: (done: (v: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fail = (why: string): void => {
      cleanup();
      reject(new Error(`${what} ${why}:\n${log.join("\n")}`));
    };
    const onExit = (code: number | null, sig: NodeJS.Signals | null): void => fail(`exited (${sig ?? code}) before it was ready`);
    const timer = setTimeout(() => fail(`not ready in ${timeoutMs} ms`), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off("exit", onExit);
    };
    child.once("exit", onExit);
    arm((v) => {
      cleanup();
      resolve(v);
    });
  });
}

/** Runs `anyserve <args>` (the built CLI) and resolves with the JSON of its `ANYSERVE_READY` line. */
export async function startCli(name: string, args: string[]): Promise<{ child: ChildProcess; ready: Record<string, string> }> {
  const log: string[] = [];
  // With the node flags the `anyserve` command runs with (its shebang), as a user would start it.
  const child = track(
    spawn(process.execPath, [...SERVING_NODE_FLAGS, BIN, ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ANYSERVE_LOG_LEVEL: "warn" },
    }),
    name,
    log,
  );
  const ready = await waitFor<Record<string, string>>(child, `anyserve ${name}`, log, 30_000, (done) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.startsWith("ANYSERVE_READY ")) done(JSON.parse(line.slice(15)) as Record<string, string>);
      else log.push(`[${name}] ${line}`);
    });
  });
  return { child, ready };
}

/**
 * Forks a TypeScript module (through tsx) that reports readiness with its first IPC message.
 * The IPC channel doubles as a lifeline: the bench servers exit when it disconnects.
 */
export async function forkServer<T>(name: string, file: string, args: string[] = []): Promise<{ child: ChildProcess; ready: T }> {
  const log: string[] = [];
  const child = track(
    fork(file, args, {
      cwd: ROOT,
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    }),
    name,
    log,
  );
  const ready = await waitFor<T>(child, name, log, 30_000, (done) => child.once("message", (m) => done(m as T)));
  return { child, ready };
}

/** Spawns any other program (nginx, a load generator); the caller decides when it is ready. */
export function spawnTracked(name: string, cmd: string, args: string[], log: string[], stdout: "ignore" | "pipe" = "ignore"): ChildProcess {
  return track(spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", stdout, "pipe"] }), name, log);
}

/**
 * Runs a TypeScript module (through tsx) to its end and resolves with its stdout; its stderr is
 * passed on line by line (progress), prefixed with `name`. Rejects if it exits unsuccessfully.
 */
export function runScript(name: string, file: string, args: string[], echo: (line: string) => void): Promise<string> {
  const log: string[] = [];
  const child = spawnTracked(name, process.execPath, ["--import", "tsx", file, ...args], log, "pipe");
  if (child.stderr) createInterface({ input: child.stderr }).on("line", (l) => echo(`  [${name}] ${l}`));
  let out = "";
  child.stdout!.on("data", (c: Buffer) => {
    out += c.toString();
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, sig) => {
      if (code === 0) return resolve(out);
      // The most telling line first (the thrown error), then everything it said.
      const why =
        [...log]
          .reverse()
          .find((l) => /Error\b/.test(l))
          ?.replace(/^\[[^\]]*\] /, "") ?? "";
      reject(new Error(`${name} exited (${sig ?? code}): ${why}\n${log.join("\n")}\n${out.slice(-2000)}`));
    });
  });
}

/** A port that was free a moment ago (for servers that cannot report a port chosen by the kernel). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** SIGTERM to every child (reverse start order), SIGKILL whatever is still alive after `graceMs`. */
export async function stopAll(graceMs = 5_000): Promise<void> {
  const live = [...children].reverse().filter(isAlive);
  await Promise.all(
    live.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (!isAlive(c)) return resolve();
          const timer = setTimeout(() => c.kill("SIGKILL"), graceMs);
          c.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          if (c.connected) c.disconnect();
          c.kill("SIGTERM");
        }),
    ),
  );
}

/**
 * Stops every child on the way out. Signals: stop gracefully, then exit 128+n. Uncaught errors:
 * print, stop, exit 1. `exit` itself (synchronous) is the last resort: SIGKILL what is left.
 */
export function installCleanup(): void {
  const bail = (code: number) => (): void => {
    if (exiting) process.exit(code); // second Ctrl-C: do not wait any more
    exiting = true;
    process.stderr.write(`\nstopping ${children.length} child process(es)…\n`);
    void stopAll().finally(() => process.exit(code));
  };
  process.on("SIGINT", bail(130));
  process.on("SIGTERM", bail(143));
  process.on("SIGHUP", bail(129));
  const crash = (err: unknown): void => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    bail(1)();
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  process.on("exit", () => {
    for (const c of children) if (isAlive(c)) c.kill("SIGKILL");
  });
}
