/**
 * The optional binaries of the suite — wrk (load generator) and nginx (a peer) — and how to run
 * them. Each is looked for in its environment variable, then in `.bench-tools/` (where
 * scripts/bench-tools.mjs unpacks the distribution's package before `npm run bench`), then on PATH.
 */
import { accessSync, constants, readdirSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./procs.js";

const TOOLS_DIR = path.join(ROOT, ".bench-tools");

export interface Tool {
  bin: string;
  /** Environment to run it with (libraries unpacked next to it). */
  env: NodeJS.ProcessEnv;
}

const executable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The unpacked packages' library folders (`usr/lib/<arch>-linux-gnu`, whatever the architecture). */
function libDirs(): string[] {
  const lib = path.join(TOOLS_DIR, "usr/lib");
  try {
    return readdirSync(lib)
      .filter((d) => d.endsWith("-linux-gnu"))
      .map((d) => path.join(lib, d));
  } catch {
    return [];
  }
}

/** `name`'s binary: `$envVar`, `.bench-tools/<relative>`, or PATH; undefined when none is there. */
export function findTool(name: string, envVar: string, relative: string): Tool | undefined {
  const given = process.env[envVar];
  if (given) return executable(given) ? { bin: given, env: process.env } : undefined;
  const unpacked = path.join(TOOLS_DIR, relative);
  if (executable(unpacked)) {
    const ld = [...libDirs(), process.env.LD_LIBRARY_PATH].filter(Boolean).join(path.delimiter);
    return { bin: unpacked, env: { ...process.env, LD_LIBRARY_PATH: ld } };
  }
  const onPath = (process.env.PATH ?? "")
    .split(path.delimiter)
    .filter(Boolean)
    .map((d) => path.join(d, name))
    .find(executable);
  return onPath ? { bin: onPath, env: process.env } : undefined;
}
