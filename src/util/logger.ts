/** Structured JSON-line logs (pino). `ANYSERVE_LOG_LEVEL` sets the level (default info). */
import { pino, type Logger } from "pino";

export type { Logger };

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  const env = process.env.ANYSERVE_LOG_LEVEL ?? "info";
  const level = LEVELS.has(env) ? env : "info";
  return pino({ name, level, base: { pid: process.pid, ...bindings } });
}

/** A logger that drops everything, for library use without output. */
export const silentLogger: Logger = pino({ level: "silent" });
