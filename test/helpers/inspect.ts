/**
 * Reads a child process's heap from outside, through the V8 inspector: start the process with
 * {@link INSPECT_ENV} (it prints `Debugger listening on ws://…` on stderr), then
 * {@link heapAfterGc} forces a full garbage collection and answers `process.memoryUsage()` — what
 * is still referenced, not what the collector has yet to reclaim.
 */
import { WebSocket } from "undici";
import type { Proc } from "./processes.js";

/** Environment for a process to inspect: the inspector on a free loopback port. */
export const INSPECT_ENV = { NODE_OPTIONS: "--inspect=127.0.0.1:0" };

export interface Inspector {
  /** Heap used and RSS, in bytes, right after a full GC. */
  heapAfterGc(): Promise<{ heapUsed: number; rss: number }>;
  /** A full garbage collection now: what is no longer referenced is freed (buffers outside the heap too). */
  collectGarbage(): Promise<void>;
  close(): void;
}

export async function inspect(proc: Proc): Promise<Inspector> {
  const line = proc.output.find((l) => l.includes("Debugger listening on ws://"));
  if (!line) throw new Error("the process has no inspector: start it with INSPECT_ENV");
  const ws = new WebSocket(/ws:\/\/\S+/.exec(line)![0]);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("error", () => reject(new Error("cannot connect to the inspector")));
  });
  let next = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
  });
  const send = (method: string, params: Record<string, unknown> = {}): Promise<unknown> =>
    new Promise((resolve) => {
      const id = ++next;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    async collectGarbage() {
      await send("HeapProfiler.collectGarbage");
    },
    async heapAfterGc() {
      await send("HeapProfiler.collectGarbage");
      const r = (await send("Runtime.evaluate", { expression: "JSON.stringify(process.memoryUsage())", returnByValue: true })) as {
        result: { value: string };
      };
      const m = JSON.parse(r.result.value) as { heapUsed: number; rss: number };
      return { heapUsed: m.heapUsed, rss: m.rss };
    },
    close: () => ws.close(),
  };
}
