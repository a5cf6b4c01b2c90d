/**
 * The service config's fields, read off the schema: each field's path, metadata, kind and default.
 * What lists fields — `anyserve start`'s flags, the docs test — reads them here rather than
 * repeating the schema.
 */
import { z } from "zod";
import { type FieldMeta, SECTION_NAMES, SECTION_SCHEMAS, serviceSchema } from "./schema.js";

export type FieldKind = "number" | "boolean" | "string" | "list" | "record";

export interface FieldInfo {
  /** `app`, or `section.key`. */
  path: string;
  meta: FieldMeta;
  kind: FieldKind;
  /** The schema's default (undefined: required). */
  default: unknown;
  /** Allowed values, for enums (and `true`/`false` for a boolean-or-enum field). */
  choices?: string[];
  schema: z.ZodType;
}

/** What values a field takes, from its JSON Schema. */
export function kindOf(schema: z.ZodType): { kind: FieldKind; choices?: string[] } {
  const js = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  // A nullable union nests: anyOf [anyOf [string, array], null].
  const flat = (v: JsonSchema): JsonSchema[] => (v.anyOf ? v.anyOf.flatMap(flat) : [v]);
  const variants = flat(js);
  const types = new Set(variants.flatMap((v) => (v.type === undefined ? [] : [v.type])));
  const choices = variants.flatMap((v) => v.enum ?? (v.type === "boolean" ? ["true", "false"] : []));
  const withChoices = <K extends FieldKind>(kind: K) => (choices.length > 0 ? { kind, choices: choices.map(String) } : { kind });
  if (types.has("integer") || types.has("number")) return { kind: "number" };
  if (types.has("array")) return { kind: "list" };
  if (types.has("object")) return { kind: "record" };
  if (types.has("string")) return withChoices("string");
  if (types.has("boolean")) return { kind: "boolean" };
  throw new Error(`field kind not recognised: ${JSON.stringify(js)}`);
}

interface JsonSchema {
  type?: string;
  enum?: unknown[];
  default?: unknown;
  anyOf?: JsonSchema[];
}

/** A field's default (undefined: the field is required). */
export function defaultOf(schema: z.ZodType): unknown {
  return (z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema).default;
}

function info(path: string, schema: z.ZodType): FieldInfo {
  return { path, meta: schema.meta() as unknown as FieldMeta, ...kindOf(schema), default: defaultOf(schema), schema };
}

/** Every field of a service's config, in schema order. */
export function serviceFields(): FieldInfo[] {
  const app = (serviceSchema as unknown as { shape: { app: z.ZodType } }).shape?.app;
  const fields: FieldInfo[] = app ? [info("app", app)] : [];
  for (const section of SECTION_NAMES) {
    for (const [key, schema] of Object.entries(SECTION_SCHEMAS[section].shape as Record<string, z.ZodType>)) {
      fields.push(info(`${section}.${key}`, schema));
    }
  }
  return fields;
}

/** A field's value in a config (`section.key` path). */
export function valueAt(config: unknown, path: string): unknown {
  let v = config;
  for (const k of path.split(".")) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}
