/**
 * `InferParameter` maps and protobuf int64 values ↔ JS. Parameters become `string | number |
 * boolean`; int64/uint64 values must be safe integers (else INVALID_PARAMETER), and JS numbers
 * go out as `int64_param` when they are safe integers, `double_param` otherwise.
 */
import type protobuf from "protobufjs";
import { AnyServeError } from "../errors.js";
import type { Parameters } from "./types.js";

/** An int64 field as protobufjs decodes it: a Long (the `long` package is installed) or a number. */
export type Int64 = number | protobuf.Long;
/** A decoded `InferParameter`: exactly one field is an own property when set. */
export interface PParam {
  bool_param?: boolean;
  int64_param?: Int64;
  string_param?: string;
  double_param?: number;
  uint64_param?: Int64;
}
export type PParams = Record<string, PParam>;

/** A Long/number int64 as a JS number, or `undefined` when it is not a safe integer. */
export function safeNumber(v: Int64): number | undefined {
  // Exact whenever the result is safe; when it is not, the rounded double is not safe either.
  const n = typeof v === "number" ? v : (v.unsigned ? v.high >>> 0 : v.high) * 2 ** 32 + (v.low >>> 0);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Exact text of a Long/number int64, for error messages. */
export function int64String(v: Int64): string {
  if (typeof v === "number") return String(v);
  const b = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return (v.unsigned ? b : BigInt.asIntN(64, b)).toString();
}

const FORBIDDEN = new Set(["__proto__", "constructor", "prototype"]);

/** A decoded `map<string, InferParameter>` → parameters; `where` names the owner in errors. */
export function fromProtoParams(map: PParams | undefined, where: string): Parameters | undefined {
  if (map === undefined) return undefined;
  const keys = Object.keys(map);
  if (keys.length === 0) return undefined;
  const out: Parameters = {};
  for (const k of keys) {
    if (FORBIDDEN.has(k)) throw new AnyServeError("INVALID_PARAMETER", `${where} parameter key '${k}' is not allowed`);
    const p = map[k]!;
    if (Object.hasOwn(p, "bool_param")) out[k] = p.bool_param!;
    else if (Object.hasOwn(p, "string_param")) out[k] = p.string_param!;
    else if (Object.hasOwn(p, "double_param")) out[k] = p.double_param!;
    else {
      const v = Object.hasOwn(p, "int64_param") ? p.int64_param : Object.hasOwn(p, "uint64_param") ? p.uint64_param : undefined;
      if (v === undefined) continue; // an InferParameter with no choice set carries nothing
      const n = safeNumber(v);
      if (n === undefined)
        throw new AnyServeError("INVALID_PARAMETER", `${where} parameter '${k}' is ${int64String(v)}, beyond the safe-integer range`);
      out[k] = n;
    }
  }
  return out;
}

/** Parameters → a `map<string, InferParameter>` for encoding. */
export function toProtoParams(p: Parameters | undefined): PParams | undefined {
  if (p === undefined) return undefined;
  const out: PParams = {};
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === "string") out[k] = { string_param: v };
    else if (typeof v === "boolean") out[k] = { bool_param: v };
    else out[k] = Number.isSafeInteger(v) ? { int64_param: v } : { double_param: v };
  }
  return out;
}
