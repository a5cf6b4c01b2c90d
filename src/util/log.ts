/**
 * The logger interface everything in anyserve takes, and a light implementation of it for the
 * processes and threads that run handlers.
 *
 * Why two: the API server and the replica log through pino (util/logger.ts). A worker thread or
 * worker process needs a logger from its first line (boot failures, handler errors, `ctx.logger`),
 * and loading pino there cost ~15 ms of every worker's boot for a few lines of output. So workers,
 * class services and apps use {@link jsonLogger}: the same JSON lines as pino's (`level` as pino's
 * numbers, `time`, `pid`, the bindings, `name`, `msg`; an `err` as `{type, message, stack}`),
 * written synchronously to stdout as pino does by default, at the level `ANYSERVE_LOG_LEVEL`
 * says. A pino logger satisfies {@link Logger}, so code that takes one takes either.
 *
 * @example
 * ```ts
 * app.capability({ type: "chat" }, (req, ctx) => {
 *   ctx.logger.info({ chars: String(req.value("text")).length }, "chat request");
 *   return "hi";
 * });
 * ```
 */
import { writeSync } from "node:fs";

/** One level's method: a message, or fields and a message; an Error is logged as `err`. */
export interface LogFn {
  (msg: string): void;
  (obj: object, msg?: string): void;
}

export interface Logger {
  /** The level in force: fatal, error, warn, info, debug, trace or silent. */
  level: string;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  /** A logger that adds `bindings` to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

/** pino's level numbers, so lines from both loggers read alike. */
const LEVELS: Record<string, number> = { fatal: 60, error: 50, warn: 40, info: 30, debug: 20, trace: 10, silent: Infinity };

/** `ANYSERVE_LOG_LEVEL`, or info when unset or not a level. */
export function logLevel(): string {
  const env = process.env.ANYSERVE_LOG_LEVEL ?? "info";
  return env in LEVELS ? env : "info";
}

/** A logger writing pino-style JSON lines to stdout (see the module comment). */
export function jsonLogger(name: string, bindings: Record<string, unknown> = {}, level = logLevel()): Logger {
  return new JsonLogger(level, { pid: process.pid, ...bindings, name });
}

class JsonLogger implements Logger {
  level: string;
  readonly #bindings: Record<string, unknown>;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;

  constructor(level: string, bindings: Record<string, unknown>) {
    this.level = level;
    this.#bindings = bindings;
    const threshold = LEVELS[level] ?? LEVELS.info!;
    const noop: LogFn = () => undefined;
    // Methods below the level are no-ops, decided once: a disabled debug line costs a call.
    this.fatal = threshold <= 60 ? this.#writer(60) : noop;
    this.error = threshold <= 50 ? this.#writer(50) : noop;
    this.warn = threshold <= 40 ? this.#writer(40) : noop;
    this.info = threshold <= 30 ? this.#writer(30) : noop;
    this.debug = threshold <= 20 ? this.#writer(20) : noop;
    this.trace = threshold <= 10 ? this.#writer(10) : noop;
  }

  child(bindings: Record<string, unknown>): Logger {
    return new JsonLogger(this.level, { ...this.#bindings, ...bindings });
  }

  #writer(level: number): LogFn {
    return (objOrMsg: object | string, msg?: string): void => {
      const fields = typeof objOrMsg === "string" ? undefined : objOrMsg instanceof Error ? { err: objOrMsg } : objOrMsg;
      const text = typeof objOrMsg === "string" ? objOrMsg : (msg ?? (objOrMsg instanceof Error ? objOrMsg.message : undefined));
      const line: Record<string, unknown> = { level, time: Date.now(), ...this.#bindings };
      if (fields) for (const [k, v] of Object.entries(fields)) line[k] = v instanceof Error ? errorFields(v) : v;
      if (text !== undefined) line.msg = text;
      write(line);
    };
  }
}

function errorFields(err: Error): Record<string, unknown> {
  return { type: err.name, message: err.message, stack: err.stack };
}

function write(line: Record<string, unknown>): void {
  let json: string;
  try {
    json = JSON.stringify(line);
  } catch {
    json = JSON.stringify({ level: line.level, time: line.time, msg: `${String(line.msg)} (fields not serialisable)` });
  }
  try {
    writeSync(1, `${json}\n`);
  } catch {
    // stdout closed or full (EAGAIN on a non-blocking pipe): a log line is not worth failing a request for.
  }
}

/** A logger that drops everything, for library use without output. */
export const silentLogger: Logger = jsonLogger("silent", {}, "silent");
