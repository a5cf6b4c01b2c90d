/**
 * Loading and validating deployment files. Every failing field is reported at once, with its
 * path, the bad value and what is allowed; an unknown key gets a "did you mean" hint.
 *
 * @example
 * ```ts
 * import { loadDeploymentFile } from "anyserve/server";
 * const config = await loadDeploymentFile("anyserve.yaml"); // throws ConfigError listing every problem
 * ```
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { apiServerSchema, deploymentFileSchema, nodeSchema, SECTION_SCHEMAS, type DeploymentFile } from "./schema.js";

export interface ConfigIssue {
  /** Dotted path, e.g. `services.kv_service.deployment.replicas`. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];

  constructor(source: string, issues: ConfigIssue[]) {
    super(`${source}: ${issues.length} problem(s)\n${issues.map((i) => `  - ${i.path || "(top)"}: ${i.message}`).join("\n")}`);
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** Reads and validates a YAML (or JSON) deployment file; `app:` paths become absolute (relative to the file). */
export async function loadDeploymentFile(file: string): Promise<DeploymentFile> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [{ path: "", message: `cannot read the file: ${(err as Error).message}` }]);
  }
  const config = parseDeployment(text, file);
  const dir = path.dirname(path.resolve(file));
  for (const service of Object.values(config.services)) service.app = resolveApp(service.app, dir);
  return config;
}

/** Validates a deployment document given as YAML/JSON text or as an already parsed value. */
export function parseDeployment(doc: string | unknown, source = "config"): DeploymentFile {
  let value: unknown = doc;
  if (typeof doc === "string") {
    try {
      value = parseYaml(doc, { maxAliasCount: 100, uniqueKeys: true });
    } catch (err) {
      throw new ConfigError(source, [{ path: "", message: `not valid YAML: ${(err as Error).message.split("\n")[0]}` }]);
    }
  }
  const result = deploymentFileSchema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw new ConfigError(
    source,
    result.error.issues.flatMap((issue) => describeIssue(issue, value)),
  );
}

function describeIssue(issue: z.core.$ZodIssue, root: unknown): ConfigIssue[] {
  const at = issue.path.map(String);
  const dotted = at.join(".");
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(at);
    return issue.keys.map((key) => {
      const hint = closest(key, known);
      return {
        path: dotted ? `${dotted}.${key}` : key,
        message: `unknown key${hint ? `; did you mean '${hint}'?` : ""} (allowed: ${known.join(", ")})`,
      };
    });
  }
  const input = "input" in issue ? issue.input : valueAt(root, at);
  const got =
    input === undefined
      ? "nothing"
      : typeof input === "number" && !Number.isFinite(input)
        ? String(input)
        : JSON.stringify(input)?.slice(0, 80);
  return [{ path: dotted, message: `${issue.message}; got ${got}` }];
}

/** The keys the schema allows at a path (for hints). */
function knownKeys(at: string[]): string[] {
  const shapeKeys = (s: { shape: Record<string, unknown> }) => Object.keys(s.shape);
  if (at.length === 0) return shapeKeys(deploymentFileSchema);
  if (at[0] === "api_server") return shapeKeys(apiServerSchema);
  if (at[0] === "node") return shapeKeys(nodeSchema);
  if (at[0] === "services" && at.length === 2) return ["app", ...Object.keys(SECTION_SCHEMAS)];
  if (at[0] === "services" && at.length === 3 && Object.hasOwn(SECTION_SCHEMAS, at[2]!)) {
    return shapeKeys(SECTION_SCHEMAS[at[2] as keyof typeof SECTION_SCHEMAS]);
  }
  return [];
}

function valueAt(root: unknown, at: string[]): unknown {
  let v = root;
  for (const k of at) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** The known key closest to `key` by edit distance, when it is close enough to be a typo. */
export function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = k;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** `app: ./kv.ts:KVService` relative to the deployment file. */
function resolveApp(spec: string, dir: string): string {
  const colon = spec.lastIndexOf(":");
  const file = colon > 1 ? spec.slice(0, colon) : spec;
  const rest = colon > 1 ? spec.slice(colon) : "";
  return /^[\w.]+$/.test(file) && !file.includes("/") && !/\.[cm]?[jt]s$/.test(file) ? spec : path.resolve(dir, file) + rest;
}
