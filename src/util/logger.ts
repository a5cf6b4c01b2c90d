/**
 * Structured JSON-line logs for the API server and the replica (pino). `ANYSERVE_LOG_LEVEL` sets
 * the level (default info). Worker threads and processes, class services and apps log through the
 * light logger of util/log.ts instead, which writes the same lines without loading pino.
 */
import { pino } from "pino";
import { logLevel, type Logger } from "./log.js";

export { silentLogger, type Logger } from "./log.js";

export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ name, level: logLevel(), base: { pid: process.pid, ...bindings } });
}
