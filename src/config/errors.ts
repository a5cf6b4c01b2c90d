/**
 * Config validation errors: every failing field at once, with its path, the bad value and what is
 * allowed; an unknown key gets a "did you mean" hint.
 */
import type { z } from "zod";
import { closest } from "../util/closest.js";
import { apiServerSchema, deploymentFileSchema, nodeSchema, SECTION_SCHEMAS } from "./schema.js";

export interface ConfigIssue {
  /** Dotted path, e.g. `services.kv_service.deployment.replicas`. */
  path: string;
  message: string;
}

export { closest };

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
  if (at.at(-1) === "app" && input === undefined) return [{ path: dotted, message: missingApp(at) }];
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

/** The seed's service layouts have no `app:`: say what to add. */
function missingApp(at: string[]): string {
  const service = at[0] === "services" && at.length === 3 ? at[1]! : "my_service";
  const className = service.replace(/(^|_)([a-z0-9])/g, (_, _sep: string, c: string) => c.toUpperCase());
  return `missing: add the module that serves the service, FILE[:export] relative to this file — e.g. \`app: ./${service}.ts:${className}\` for a class, \`app: ./${service}.ts:app\` for an AnyServe app`;
}

function valueAt(root: unknown, at: string[]): unknown {
  let v = root;
  for (const k of at) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}
