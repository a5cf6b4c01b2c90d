/**
 * Before a deployment starts anything, every service's app is loaded once, each in a child process
 * (`anyserve check-app`): a missing file, a module that fails to import or an export that does not
 * exist is reported with the path and what exists, and nothing is started — rather than replicas
 * crash-looping on it.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ConfigError, type ConfigIssue } from "../config/errors.js";
import type { DeploymentFile } from "../config/schema.js";
import { CLI_ENTRY } from "./child-process.js";

const run = promisify(execFile);

/** How long one app may take to load before it counts as failing. */
const CHECK_TIMEOUT_MS = 60_000;

/** Loads each distinct app of `file`; throws ConfigError naming every service whose app cannot be served. */
export async function checkApps(file: DeploymentFile, source: string): Promise<void> {
  const issues = await Promise.all(Object.entries(file.services).map(([name, s]) => checkOne(name, s.app)));
  const problems = issues.filter((i): i is ConfigIssue => i !== undefined);
  if (problems.length > 0) throw new ConfigError(source, problems);
}

async function checkOne(service: string, app: string): Promise<ConfigIssue | undefined> {
  const path = `services.${service}.app`;
  try {
    const { stdout } = await run(process.execPath, [CLI_ENTRY, "check-app", app, "--service", service], {
      timeout: CHECK_TIMEOUT_MS,
      env: { ...process.env, ANYSERVE_LOG_LEVEL: "silent" },
      maxBuffer: 1 << 20,
    });
    const line = stdout.trim().split("\n").at(-1) ?? "";
    const answer = JSON.parse(line) as { ok: boolean; message?: string };
    return answer.ok ? undefined : { path, message: answer.message ?? "cannot be loaded" };
  } catch (err) {
    const e = err as { killed?: boolean; stderr?: string; message: string };
    const why = e.killed ? `did not load within ${CHECK_TIMEOUT_MS / 1000} s` : (e.stderr?.trim().split("\n").at(-1) ?? e.message);
    return { path, message: `${app} cannot be loaded: ${why}` };
  }
}
