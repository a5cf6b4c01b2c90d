/** Helpers shared by the CLI commands: option parsing and signal handling. */
import { InvalidArgumentError } from "commander";
import { ConfigError } from "../config/errors.js";

export function intOption(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name}: expected an integer from ${min} to ${max}, got '${v}'`);
    return n;
  };
}

export function positiveOption(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name}: expected a positive number, got '${v}'`);
    return n;
  };
}

export function secondsOption(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name}: expected a positive number of seconds, got '${v}'`);
    return n;
  };
}

/** Seconds from 0 (0 turns the setting off) to an hour. */
export function nonNegativeSeconds(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < 0 || n > 3_600) {
      throw new InvalidArgumentError(`${name}: expected seconds from 0 to 3600, got '${v}'`);
    }
    return n;
  };
}

/** Prints the line tests and supervisors wait for: `ANYSERVE_READY {json}`. */
export function announceReady(info: Record<string, unknown>): void {
  process.stdout.write(`ANYSERVE_READY ${JSON.stringify(info)}\n`);
}

/** Runs `stop` on the first SIGINT/SIGTERM and exits; a second signal exits at once. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown after ${signal} failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  if (process.env.ANYSERVE_EXIT_WITH_PARENT === "1") {
    // Our supervisor holds the other end of stdin; it closing means the supervisor is gone.
    process.stdin.on("end", () => handler("SIGTERM"));
    process.stdin.on("error", () => handler("SIGTERM"));
    process.stdin.resume();
  }
}

/** Runs `fn`; a ConfigError is printed (every problem) and exits 2, as a bad deployment file does. */
export function configErrorExit<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
}
