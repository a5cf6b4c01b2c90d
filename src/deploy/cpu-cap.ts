/**
 * `resources.cpu_cores` as a real cap, where the machine lets us: each replica process (and the
 * worker processes it starts, which inherit it) runs in a cgroup of its own with a CPU quota of
 * `cpu_cores` × the period — cgroup v2's `cpu.max`, or cgroup v1's `cpu.cfs_quota_us` where the cpu
 * controller is mounted on its own (hybrid hosts). Where neither is available or writable,
 * `cpu_cores` is a placement figure only, and `up` says so once, with the reason.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/** How cpu caps are applied on this machine, or why they are not. */
export type CpuCapper =
  | { available: true; how: string; cap(id: string, pid: number, cores: number): void; release(id: string): void }
  | { available: false; reason: string };

const PERIOD_US = 100_000;

/** Finds a cgroup hierarchy with a CPU controller this process may create groups in. */
export function cpuCapper(root = "/sys/fs/cgroup", self = "/proc/self/cgroup"): CpuCapper {
  let lines: string[];
  try {
    lines = readFileSync(self, "utf8").trim().split("\n");
  } catch {
    return { available: false, reason: "this system has no cgroups (not Linux?)" };
  }
  const v2 = lines.find((l) => l.startsWith("0::"))?.slice(3);
  const v1 = lines.map((l) => l.split(":")).find(([, controllers]) => controllers?.split(",").includes("cpu"));
  const attempts: string[] = [];
  if (v2 !== undefined && readable(path.join(root, "cgroup.controllers"))?.split(" ").includes("cpu")) {
    const base = path.join(root, v2, "anyserve");
    const tried = prepare(base, () => writeFileSync(path.join(root, v2, "cgroup.subtree_control"), "+cpu"));
    if (tried === undefined)
      return groups(base, "cgroup v2 cpu.max", (dir, cores) => writeFileSync(path.join(dir, "cpu.max"), `${quota(cores)} ${PERIOD_US}`));
    attempts.push(`cgroup v2: ${tried}`);
  }
  if (v1 !== undefined) {
    const mount = [path.join(root, "cpu"), path.join(root, "cpu,cpuacct")].find(
      (m) => readable(path.join(m, "cpu.cfs_period_us")) !== undefined,
    );
    if (mount !== undefined) {
      const base = path.join(mount, v1[2] ?? "/", "anyserve");
      const tried = prepare(base);
      if (tried === undefined) {
        return groups(base, "cgroup v1 cpu.cfs_quota_us", (dir, cores) => {
          writeFileSync(path.join(dir, "cpu.cfs_period_us"), String(PERIOD_US));
          writeFileSync(path.join(dir, "cpu.cfs_quota_us"), String(quota(cores)));
        });
      }
      attempts.push(`cgroup v1: ${tried}`);
    }
  }
  return { available: false, reason: attempts.length > 0 ? attempts.join("; ") : "no cgroup hierarchy with a cpu controller" };
}

const quota = (cores: number) => Math.max(1000, Math.round(cores * PERIOD_US));

function readable(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Creates the parent group; undefined when it worked, else why not. */
function prepare(base: string, enable?: () => void): string | undefined {
  try {
    enable?.();
    mkdirSync(base, { recursive: true });
    return undefined;
  } catch (err) {
    return `cannot create ${base}: ${(err as Error).message}`;
  }
}

function groups(base: string, how: string, setQuota: (dir: string, cores: number) => void): CpuCapper {
  return {
    available: true,
    how,
    cap(id, pid, cores) {
      const dir = path.join(base, id.replace(/[^\w.-]/g, "_"));
      mkdirSync(dir, { recursive: true });
      setQuota(dir, cores);
      writeFileSync(path.join(dir, "cgroup.procs"), String(pid));
    },
    release(id) {
      // Empty once its processes exited; a group still in use stays (removed with its parent's next cleanup).
      try {
        rmdirSync(path.join(base, id.replace(/[^\w.-]/g, "_")));
      } catch {
        // still has processes, or already gone
      }
    },
  };
}
