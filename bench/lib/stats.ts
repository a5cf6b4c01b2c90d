/** Small statistics and the description of the machine a run happened on. */
import { execFileSync } from "node:child_process";
import os from "node:os";
import { ROOT } from "./procs.js";

/** Median; for an even count the mean of the two middle values. NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile of an already sorted array (`q` in 0..1). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export interface MachineInfo {
  cpuModel: string;
  cpuCount: number;
  node: string;
  os: string;
  memoryGb: number;
  /** 1-minute load average when the run started: a busy machine skews everything. */
  loadAvg1: number;
  date: string;
  gitCommit: string | null;
  /** Uncommitted changes in the tree when the run started (the figures may not be the commit's). */
  gitDirty: boolean | null;
}

function git(args: string[]): string | null {
  try {
    return execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const status = git(["status", "--porcelain", "--untracked-files=no"]);
  return {
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpuCount: cpus.length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAvg1: Math.round(os.loadavg()[0]! * 100) / 100,
    date: new Date().toISOString(),
    gitCommit: git(["rev-parse", "HEAD"]),
    gitDirty: status === null ? null : status.length > 0,
  };
}
