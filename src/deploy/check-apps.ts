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

/** What a loaded app serves, as `anyserve check-app` reports it. */
export interface CheckedHandler {
  capability: Record<string, string>;
  stream: boolean;
  /** The handler's declared example inputs. */
  example?: Record<string, unknown>;
}

/**
 * Loads each service's app; throws ConfigError naming every service whose app cannot be served,
 * else answers what each serves.
 */
export async function checkApps(file: DeploymentFile, source: string): Promise<Record<string, CheckedHandler[]>> {
  const results = await Promise.all(
    Object.entries(file.services).map(async ([name, s]) => [name, await checkOne(name, s.app, s.deployment.python)] as const),
  );
  const problems = results.flatMap(([, r]) => ("path" in r ? [r] : []));
  if (problems.length > 0) throw new ConfigError(source, problems);
  return Object.fromEntries(results.map(([name, r]) => [name, "path" in r ? [] : r.handlers]));
}

async function checkOne(service: string, app: string, python: string | null): Promise<ConfigIssue | { handlers: CheckedHandler[] }> {
  const path = `services.${service}.app`;
  // A Python app is loaded in its own interpreter (check-app runs `python -m anyserve.describe`).
  const args = [CLI_ENTRY, "check-app", app, "--service", service, ...(python ? ["--python", python] : [])];
  try {
    const { stdout } = await run(process.execPath, args, {
      timeout: CHECK_TIMEOUT_MS,
      env: { ...process.env, ANYSERVE_LOG_LEVEL: "silent" },
      maxBuffer: 1 << 20,
    });
    const line = stdout.trim().split("\n").at(-1) ?? "";
    const answer = JSON.parse(line) as { ok: boolean; message?: string; handlers?: CheckedHandler[] };
    return answer.ok ? { handlers: answer.handlers ?? [] } : { path, message: answer.message ?? "cannot be loaded" };
  } catch (err) {
    const e = err as { killed?: boolean; stderr?: string; message: string };
    const why = e.killed ? `did not load within ${CHECK_TIMEOUT_MS / 1000} s` : (e.stderr?.trim().split("\n").at(-1) ?? e.message);
    return { path, message: `${app} cannot be loaded: ${why}` };
  }
}
