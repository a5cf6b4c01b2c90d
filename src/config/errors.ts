/**
 * Config validation errors: every failing field at once, with its path, the bad value and what is
 * allowed; an unknown key gets a "did you mean" hint.
 */
import type { z } from "zod";
import { apiServerSchema, deploymentFileSchema, nodeSchema, SECTION_SCHEMAS } from "./schema.js";

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

/** The issues of a failed parse of `root`, described for people. */
export function issuesOf(error: z.ZodError, root: unknown): ConfigIssue[] {
  return error.issues.flatMap((issue) => describeIssue(issue, root));
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

/**
 * The keys the schema allows at a path (for hints). A path inside a service starts with
 * `services.<name>` in a deployment file and at the service itself elsewhere.
 */
function knownKeys(at: string[]): string[] {
  const shapeKeys = (s: { shape: Record<string, unknown> }) => Object.keys(s.shape);
  const serviceKeys = (rest: string[]): string[] => {
    if (rest.length === 0) return ["app", ...Object.keys(SECTION_SCHEMAS)];
    if (rest.length === 1 && Object.hasOwn(SECTION_SCHEMAS, rest[0]!)) {
      return shapeKeys(SECTION_SCHEMAS[rest[0] as keyof typeof SECTION_SCHEMAS]);
    }
    return [];
  };
  if (at.length === 0) return shapeKeys(deploymentFileSchema);
  if (at[0] === "api_server") return shapeKeys(apiServerSchema);
  if (at[0] === "node") return shapeKeys(nodeSchema);
  if (at[0] === "object_store") return shapeKeys(SECTION_SCHEMAS.object_store);
  if (at[0] === "services" && at.length >= 2) return serviceKeys(at.slice(2));
  return serviceKeys(at);
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
