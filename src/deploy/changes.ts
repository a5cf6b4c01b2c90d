/**
 * How a changed service config applies to running replicas, from each field's update type in the schema:
 * `diffFields` lists what changed (for `anyserve apply`'s report), `configVersion` names the
 * restart-type fields so the controller replaces every replica of another version. Both compare
 * the same canonical form, so a field reported `restart` always means a new version and a `live`
 * one never does.
 */
import { createHash } from "node:crypto";
import { SECTION_NAMES, SECTION_SCHEMAS, type ServiceConfig, updateTypeOf } from "../config/schema.js";

export interface FieldChange {
  field: string;
  applied: "live" | "restart";
}

/** Every field of a service config by its dotted name (`deployment.replicas`), in schema order. */
function fields(cfg: ServiceConfig): [string, unknown][] {
  const out: [string, unknown][] = [["app", cfg.app]];
  for (const section of SECTION_NAMES) {
    // A section that is absent (`autoscaling: null`) has each of its fields unset: turning it on
    // changes those fields, each with its own update type.
    const values: Record<string, unknown> = cfg[section] ?? {};
    for (const key of Object.keys(SECTION_SCHEMAS[section].shape)) out.push([`${section}.${key}`, values[key] ?? null]);
  }
  return out;
}

const updateType = updateTypeOf;

/** Which fields differ, and whether each applies live or needs the replicas replaced. */
export function diffFields(before: ServiceConfig | undefined, after: ServiceConfig): FieldChange[] {
  if (!before) return [];
  const old = new Map(fields(before).map(([f, v]) => [f, canonical(v)]));
  return fields(after)
    .filter(([field, value]) => old.get(field) !== canonical(value))
    .map(([field]) => ({ field, applied: updateType(field) }));
}

/**
 * A short hash of the restart-type fields: equal for two configs that differ only in live fields
 * (replicas, balancing, failover, health intervals), different otherwise.
 *
 * @example
 * configVersion(a) === configVersion({ ...a, deployment: { ...a.deployment, replicas: 5 } }); // true
 */
export function configVersion(cfg: ServiceConfig): string {
  const restartFields = fields(cfg).filter(([field]) => updateType(field) === "restart");
  return createHash("sha256").update(canonical(restartFields)).digest("hex").slice(0, 12);
}

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` (a reordered `node_selector`) compare equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
