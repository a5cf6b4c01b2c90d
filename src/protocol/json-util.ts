/**
 * Small helpers shared by the JSON-facing codecs: safe object walking, parameter maps and error
 * messages that quote the offending value without echoing a megabyte of it back.
 */
import { AnyServeError, type ErrorCode } from "../errors.js";
import type { Parameters } from "./types.js";

/** Keys that could reach a prototype if some later code copied the object with `Object.assign` or `[k] = v`. */
const FORBIDDEN_KEYS = ["__proto__", "constructor", "prototype"] as const;

/**
 * A short, printable rendering of a value for error messages (JSON-ish, at most ~60 chars).
 * Looks at most two levels deep, so a 100k-deep array costs nothing to describe.
 */
export function describe(v: unknown): string {
  const s = shallow(v, 0);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function shallow(v: unknown, depth: number): string {
  if (v === undefined) return "undefined";
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (typeof v !== "object" || v === null) return String(v); // numbers keep NaN/Infinity readable
  if (Buffer.isBuffer(v)) return `<Buffer ${v.length} bytes>`;
  if (Array.isArray(v)) {
    if (depth >= 2) return "[...]";
    const items = v.slice(0, 5).map((x) => shallow(x, depth + 1));
    return `[${items.join(",")}${v.length > 5 ? ",..." : ""}]`;
  }
  if (depth >= 2) return "{...}";
  const keys = Object.keys(v);
  const items = keys.slice(0, 5).map((k) => `${JSON.stringify(k)}:${shallow((v as Record<string, unknown>)[k], depth + 1)}`);
  return `{${items.join(",")}${keys.length > 5 ? ",..." : ""}}`;
}

/** A plain JSON object (not null, not an array). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Rejects own keys that name prototypes. `JSON.parse` itself is safe (it defines `__proto__` as
 * an own property), but anything downstream that copies the object by assignment would not be.
 */
export function rejectPrototypeKeys(obj: object, where: string): void {
  for (const k of FORBIDDEN_KEYS) {
    if (Object.hasOwn(obj, k)) {
      throw new AnyServeError("INVALID_JSON", `${where}: key '${k}' is not allowed`);
    }
  }
}

/**
 * Validates a `parameters` map: a plain object whose values are string, number or boolean.
 * Returns `undefined` when absent. `where` names the owner, e.g. `request` or `input 'x'`.
 */
export function readParameters(value: unknown, where: string): Parameters | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) {
    throw new AnyServeError("INVALID_PARAMETER", `${where} parameters must be an object, got ${describe(value)}`);
  }
  rejectPrototypeKeys(value, `${where} parameters`);
  const out: Parameters = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) {
      out[k] = v;
    } else {
      throw new AnyServeError("INVALID_PARAMETER", `${where} parameter '${k}' must be a string, number or boolean, got ${describe(v)}`);
    }
  }
  return out;
}

/** Reads an optional string field, throwing `code` naming the field when it is not a string. */
export function optionalString(
  obj: Record<string, unknown>,
  key: string,
  where: string,
  code: ErrorCode = "INVALID_REQUEST",
  maxLength = Infinity,
): string | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") {
    throw new AnyServeError(code, `${where} field '${key}' must be a string, got ${describe(v)}`);
  }
  if (v.length > maxLength) {
    throw new AnyServeError(code, `${where} field '${key}' must be at most ${maxLength} characters, got ${v.length}`);
  }
  return v;
}

/** Parses JSON text from a buffer; any failure (empty, truncated, bad bytes) is INVALID_JSON. */
export function parseJson(body: Buffer, what: string): unknown {
  if (body.length === 0) throw new AnyServeError("INVALID_JSON", `${what} body is empty`);
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
  } catch (err) {
    throw new AnyServeError("INVALID_JSON", `${what} body is not valid JSON: ${(err as Error).message}`);
  }
}
