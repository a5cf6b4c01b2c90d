/**
 * Starts real anyserve processes (the built CLI, bin/anyserve.js) on port 0 for tests, waits for
 * their ANYSERVE_READY line, and stops them when the test ends.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import type { TestContext } from "node:test";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = path.join(ROOT, "bin", "anyserve.js");
export const DEMO = path.join(ROOT, "examples", "mvp_demo");
export const FIXTURES = path.join(ROOT, "test", "fixtures");

export interface Proc {
  child: ChildProcess;
  ready: Record<string, string>;
  /** Lines printed so far (stdout and stderr). */
  output: string[];
  /** Resolves with the exit code/signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

type Cleanup = Pick<TestContext, "after"> | { after(fn: () => unknown): void };

/**
 * Runs `anyserve <args>` and waits until it announces itself. An `api-server` runs without its
 * warm-up (`--warmup 0`) unless `args` set one: tests expect "nothing matches" to be 404 at once.
 *
 * `anyserve up` makes every deployment a control-plane token by default (docs/security.md); tests
 * that are not about auth run it with `--no-token` — added here unless the args choose (`--token`,
 * `--no-token`, `--token-file`), the env gives `ANYSERVE_TOKEN`, or `o.defaultAuth` asks for
 * exactly what a user gets. `o.nodeArgs` go to node before the script (e.g. util/node-flags.ts's
 * SERVING_NODE_FLAGS, which the shebang would give).
 */
export function startCli(
  t: Cleanup,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  readyTimeoutMs = 60_000,
  o: { defaultAuth?: boolean; netns?: string; command?: { file: string; args: string[]; cwd?: string }; nodeArgs?: readonly string[] } = {},
): Promise<Proc> {
  if (args[0] === "api-server" && !args.includes("--warmup")) args = [...args, "--warmup", "0"];
  const choosesAuth = args.some((a) => /^--(no-)?token(-file)?(=|$)/.test(a)) || env.ANYSERVE_TOKEN !== undefined;
  const argv = args[0] === "up" && !choosesAuth && !o.defaultAuth ? [...args, "--no-token"] : args;
  // A stdin pipe the child watches: if this test process is killed (a runner timeout, Ctrl-C)
  // before its cleanup runs, the child still exits instead of living on.
  // In a network namespace (test/helpers/netns.ts): `ip netns exec` enters it and execs node, so the child is node itself.
  // `o.command`: run exactly this instead (a pod's command line; `args` then only name it in errors).
  const nodeArgs = [...(o.nodeArgs ?? []), BIN, ...argv];
  const [file, fileArgs] = o.command
    ? [o.command.file, o.command.args]
    : o.netns
      ? ["ip", ["netns", "exec", o.netns, process.execPath, ...nodeArgs]]
      : [process.execPath, nodeArgs];
  const child = spawn(file, fileArgs, {
    ...(o.command?.cwd ? { cwd: o.command.cwd } : {}),
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ANYSERVE_LOG_LEVEL: "warn", ANYSERVE_EXIT_WITH_PARENT: "1", ...env },
  });
  child.stdin!.on("error", () => undefined);
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const proc: Proc = {
    child,
    ready: {},
    output,
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) {
        // A test that stopped it (SIGSTOP) and failed before continuing it: a stopped process
        // would take the signal only after the 15 s fallback.
        child.kill("SIGCONT");
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  t.after(() => proc.stop());
  createInterface({ input: child.stderr! }).on("line", (l) => output.push(l));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`anyserve ${args.join(" ")} not ready in ${readyTimeoutMs / 1000} s:\n${output.join("\n")}`)),
      readyTimeoutMs,
    );
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output.push(line);
      if (line.startsWith("ANYSERVE_READY ")) {
        clearTimeout(timer);
        proc.ready = JSON.parse(line.slice(15)) as Record<string, string>;
        resolve(proc);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`anyserve ${args.join(" ")} exited (${signal ?? code}) before ready:\n${output.join("\n")}`));
    });
  });
}

export function startApiServerProc(t: Cleanup, extra: string[] = []): Promise<Proc> {
  return startCli(t, ["api-server", "--port", "0", "--grpc-port", "0", ...extra]);
}

export function startReplicaProc(t: Cleanup, apiServer: string, app: string, extra: string[] = []): Promise<Proc> {
  return startCli(t, ["start", "--app", app, "--port", "0", "--api-server", apiServer, "--health-check-interval", "0.2", ...extra]);
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The ids in the API server's registry (`token`: its read or control-plane token, when it has one). */
export async function registryIds(apiServer: string, token?: string): Promise<string[]> {
  const res = await fetch(`${apiServer}/registry`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const body = (await res.json()) as { replicas: { replica_id: string }[] };
  return body.replicas.map((r) => r.replica_id).sort();
}

/** Cleanups gathered during a describe's `before`, run by one `after` registered at describe level. */
export class Cleanups {
  readonly #fns: (() => unknown)[] = [];
  after(fn: () => unknown): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.#fns.reverse()) await fn();
  }
}
