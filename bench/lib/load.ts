/**
 * Load generation (autocannon's programmatic API, in the parent process) and CPU accounting of the
 * server processes under load.
 *
 * Latency percentiles come from our own record of every response time, not from autocannon's
 * histogram: that one stores whole milliseconds, which cannot show a 70 µs hop at concurrency 1.
 */
import { execFileSync } from "node:child_process";
import type { EventEmitter } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { percentile } from "./stats.js";

/** The part of autocannon's API we use (the package ships no types). */
interface AutocannonOptions {
  url: string;
  method: "POST";
  headers: Record<string, string>;
  body: string | Buffer;
  connections: number;
  duration: number;
  pipelining: number;
  timeout: number;
  sampleInt: number;
}
interface AutocannonResult {
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: AutocannonOptions, cb: (err: Error | null, result: AutocannonResult) => void) => EventEmitter & { stop(): void };

const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

export interface Target {
  url: string;
  headers: Record<string, string>;
  body: string | Buffer;
}

export interface LoadResult {
  /** Completed 2xx responses per second of wall time. */
  rps: number;
  /** Latency percentiles in µs, over every response of the run. */
  p50Us: number;
  p99Us: number;
  /** 2xx responses completed. */
  requests: number;
  /** Connection errors, timeouts and non-2xx answers: any of them makes the run suspect. */
  errors: number;
  seconds: number;
}

/** Runs `connections` keep-alive connections against `target` for `seconds`. */
export function runLoad(target: Target, connections: number, seconds: number): Promise<LoadResult> {
  let times = new Float64Array(1 << 16);
  let n = 0;
  let ok = 0;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const instance = autocannon(
      {
        url: target.url,
        method: "POST",
        headers: target.headers,
        body: target.body,
        connections,
        duration: seconds,
        pipelining: 1,
        timeout: 10,
        // autocannon notices the end of `duration` only at its next sample tick (1 s by default),
        // which would stretch a 0.25 s warm-up to 1 s; our percentiles do not use its samples.
        sampleInt: 100,
      },
      (err, result) => {
        const elapsed = (performance.now() - started) / 1000;
        if (err) return reject(err);
        const sorted = times.subarray(0, n).sort();
        resolve({
          rps: ok / elapsed,
          p50Us: percentile(sorted, 0.5) * 1000,
          p99Us: percentile(sorted, 0.99) * 1000,
          requests: ok,
          errors: result.errors + result.timeouts + result.non2xx,
          seconds: elapsed,
        });
      },
    );
    instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status < 200 || status > 299) return;
      ok++;
      if (n === times.length) {
        const grown = new Float64Array(n * 2);
        grown.set(times);
        times = grown;
      }
      times[n++] = ms;
    });
  });
}

/** Clock ticks per second of /proc/<pid>/stat (almost always 100). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * utime + stime of one process (all its threads) in ticks; 0 if it is gone or not on Linux.
 * `reaped`: plus the CPU of its children that exited and were waited for (cutime + cstime) — how
 * a short-lived child like wrk, gone before the measurement ends, is still counted.
 */
function ticksOf(pid: number, reaped = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // comm may contain spaces
    return Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0); // fields 14–17 of proc(5)
  } catch {
    return 0;
  }
}

/** `pids` plus all their descendants (nginx workers are children of the master). */
function withDescendants(pids: number[]): number[] {
  let parents: Map<number, number[]>;
  try {
    parents = new Map();
    for (const d of readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        const list = parents.get(ppid) ?? [];
        list.push(Number(d));
        parents.set(ppid, list);
      } catch {
        /* exited meanwhile */
      }
    }
  } catch {
    return pids;
  }
  const all = new Set(pids);
  for (const p of all) for (const c of parents.get(p) ?? []) all.add(c);
  return [...all];
}

/** Busy and steal ticks of the whole machine (all CPUs), from the first line of /proc/stat. */
function machineTicks(): { busy: number; steal: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: busy excludes idle, iowait and steal.
  return { busy: f[0]! + f[1]! + f[2]! + f[5]! + f[6]!, steal: f[7] ?? 0 };
}

/** CPU others used while a measurement ran, in % of all cores: a round with a lot of it is suspect. */
export interface Interference {
  /** Processes outside this suite (other users of the machine). */
  foreignPct: number;
  /** Time the hypervisor gave our vCPUs to someone else. */
  stealPct: number;
}

/**
 * Starts measuring the CPU used by everything that is not this suite (this process and all its
 * descendants) and the VM's steal time. Null where /proc is not available.
 */
export function interferenceMeter(): () => Interference | null {
  if (process.platform !== "linux") return () => null;
  const ours = withDescendants([process.pid]);
  const cores = os.cpus().length;
  const t0 = performance.now();
  const m0 = machineTicks();
  // This process with its reaped children: a load generator it ran (wrk) is ours, not foreign.
  const oursNow = (): number => ours.reduce((s, p) => s + ticksOf(p, p === process.pid), 0);
  const o0 = oursNow();
  return () => {
    const m1 = machineTicks();
    const o1 = oursNow();
    const available = ((performance.now() - t0) / 1000) * CLK_TCK * cores;
    const pct = (x: number): number => Math.round(Math.max(0, x / available) * 1000) / 10;
    return { foreignPct: pct(m1.busy - m0.busy - (o1 - o0)), stealPct: pct(m1.steal - m0.steal) };
  };
}

/**
 * Starts a CPU measurement of the processes that serve a scenario (name → pid, each with its
 * descendants); the returned function gives each one's CPU time in µs since the start, or null
 * where /proc is not available.
 */
export function cpuMeter(procs: Record<string, number>): () => Record<string, number> | null {
  if (process.platform !== "linux") return () => null;
  const trees = Object.entries(procs).map(([name, pid]) => ({ name, pids: withDescendants([pid]) }));
  const sum = (pids: number[]): number => pids.reduce((s, p) => s + ticksOf(p), 0);
  const start = trees.map((t) => sum(t.pids));
  return () => Object.fromEntries(trees.map((t, i) => [t.name, ((sum(t.pids) - start[i]!) * 1e6) / CLK_TCK]));
}
