/**
 * Asks V8 for a full collection soon, after a connection that held a large unwritten answer went
 * away (util/write-guard.ts). Why: the serving processes run with `--no-memory-reducer`
 * (util/node-flags.ts), so an idle process never collects on its own, and buffers its clients
 * abandoned stayed resident until the next allocation-driven collection — measured: an API server
 * cut from 10 clients that left 32 MiB answers unread stayed at 369 MB (from 89) for as long as it
 * idled; after one collection it is back near where it started.
 *
 * V8's `gc()` is reached without starting node with `--expose-gc`: the flag is set at run time and
 * the function taken from a fresh context (the collection itself is V8's ordinary full GC, run as
 * a task: `execution: "async"`). Requests are coalesced: one collection runs at the end of the
 * turn, and at most one per {@link MIN_INTERVAL_MS} (a later request waits for the interval to
 * end, so connections that close one after another are all collected). Where the function cannot
 * be had, this does nothing (memory then returns at the next collection).
 */
import v8 from "node:v8";
import vm from "node:vm";

type GcFunction = (options?: { type?: "major" | "minor"; execution?: "sync" | "async" }) => unknown;

/** Bytes a closed connection must have held unwritten for a collection to be worth asking for. */
export const GC_AFTER_BYTES = 4 * 1024 * 1024;
const MIN_INTERVAL_MS = 2_000;

let gc: GcFunction | null | undefined;
let last = Number.NEGATIVE_INFINITY;
let scheduled: NodeJS.Timeout | undefined;

/** Schedules a full collection: soon, or once 2 s have passed since the last one. */
export function collectSoon(): void {
  if (scheduled !== undefined) return;
  scheduled = setTimeout(collect, Math.max(0, last + MIN_INTERVAL_MS - Date.now()));
  scheduled.unref();
}

function collect(): void {
  scheduled = undefined;
  last = Date.now();
  gc ??= gcFunction();
  if (gc === null) return;
  try {
    void Promise.resolve(gc({ type: "major", execution: "async" })).catch(() => undefined);
  } catch {
    gc = null;
  }
}

function gcFunction(): GcFunction | null {
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === "function") return global as GcFunction;
  try {
    v8.setFlagsFromString("--expose-gc");
    const fn: unknown = vm.runInNewContext("gc");
    return typeof fn === "function" ? (fn as GcFunction) : null;
  } catch {
    return null;
  }
}
