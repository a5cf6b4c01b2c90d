/**
 * One table per OIP datatype: how big an element is, which typed array holds it, which gRPC
 * `InferTensorContents` field carries it, and what a JSON element may be. Everything else in
 * `src/protocol/` asks this table instead of switching on datatype strings, so adding a type means
 * adding a row here.
 *
 * FP16 and BF16 have no typed array in Node 20 and no contents field: they travel as raw bits only,
 * so this module also holds the float ↔ 16-bit converters used when JSON numbers meet them.
 */
import { DATATYPES, type Datatype } from "./types.js";

/** How a datatype's elements look to JS code. */
export type DatatypeKind = "bool" | "int" | "uint" | "float" | "half" | "bytes";

/** The `InferTensorContents` field that carries a datatype, or `null` when it travels raw only. */
export type ContentsField =
  | "bool_contents"
  | "int_contents"
  | "int64_contents"
  | "uint_contents"
  | "uint64_contents"
  | "fp32_contents"
  | "fp64_contents"
  | "bytes_contents";

type TypedArrayCtor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Uint16ArrayConstructor
  | Int16ArrayConstructor
  | Uint32ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;

/** One row of {@link DATATYPE_INFO}. */
export interface DatatypeInfo {
  readonly datatype: Datatype;
  readonly kind: DatatypeKind;
  /** Bytes per element; `0` for BYTES, whose elements are variable-length. */
  readonly size: number;
  /** The typed array whose element layout matches, or `null` (FP16, BF16, BYTES). */
  readonly array: TypedArrayCtor | null;
  readonly contents: ContentsField | null;
  /** Inclusive integer range for INT/UINT types up to 32 bits (64-bit types: the safe-integer range in JSON). */
  readonly min?: number;
  readonly max?: number;
}

const row = (
  datatype: Datatype,
  kind: DatatypeKind,
  size: number,
  array: TypedArrayCtor | null,
  contents: ContentsField | null,
  min?: number,
  max?: number,
): DatatypeInfo => (min === undefined ? { datatype, kind, size, array, contents } : { datatype, kind, size, array, contents, min, max });

/** The table, keyed by datatype. */
export const DATATYPE_INFO: Readonly<Record<Datatype, DatatypeInfo>> = {
  BOOL: row("BOOL", "bool", 1, Uint8Array, "bool_contents"),
  UINT8: row("UINT8", "uint", 1, Uint8Array, "uint_contents", 0, 0xff),
  UINT16: row("UINT16", "uint", 2, Uint16Array, "uint_contents", 0, 0xffff),
  UINT32: row("UINT32", "uint", 4, Uint32Array, "uint_contents", 0, 0xffffffff),
  // 64-bit ranges below are what JSON can carry exactly; binary paths carry the full range.
  UINT64: row("UINT64", "uint", 8, BigUint64Array, "uint64_contents", 0, Number.MAX_SAFE_INTEGER),
  INT8: row("INT8", "int", 1, Int8Array, "int_contents", -0x80, 0x7f),
  INT16: row("INT16", "int", 2, Int16Array, "int_contents", -0x8000, 0x7fff),
  INT32: row("INT32", "int", 4, Int32Array, "int_contents", -0x80000000, 0x7fffffff),
  INT64: row("INT64", "int", 8, BigInt64Array, "int64_contents", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
  FP16: row("FP16", "half", 2, null, null),
  FP32: row("FP32", "float", 4, Float32Array, "fp32_contents"),
  FP64: row("FP64", "float", 8, Float64Array, "fp64_contents"),
  BYTES: row("BYTES", "bytes", 0, null, "bytes_contents"),
  BF16: row("BF16", "half", 2, null, null),
};

const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES);

/** The datatype names, comma-separated, for error messages. */
export const DATATYPES_LIST = DATATYPES.join(", ");

/** True when `v` is one of the 14 datatype names (case-sensitive, as the spec says). */
export function isDatatype(v: unknown): v is Datatype {
  return typeof v === "string" && DATATYPE_SET.has(v);
}

/** Inclusive bigint range of INT64, for paths that carry all 64 bits (binary, bigint values). */
export const INT64_RANGE = { min: -(1n << 63n), max: (1n << 63n) - 1n } as const;
/** Inclusive bigint range of UINT64. */
export const UINT64_RANGE = { min: 0n, max: (1n << 64n) - 1n } as const;

// ── 16-bit floats ───────────────────────────────────────────────────────────────────────────────
// Rounded straight from the JS double (not via float32) so there is exactly one rounding step:
// going through float32 first would round twice and can be off by one ulp on ties.

interface MiniFloat {
  readonly expBits: number;
  readonly manBits: number;
}
const HALF: MiniFloat = { expBits: 5, manBits: 10 };
const BFLOAT: MiniFloat = { expBits: 8, manBits: 7 };

/** Round-half-to-even of a non-negative double to an integer (exact for the magnitudes used here). */
function roundEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function toMiniFloat(x: number, fmt: MiniFloat): number {
  const { expBits, manBits } = fmt;
  const expMax = (1 << expBits) - 1;
  const bias = (1 << (expBits - 1)) - 1;
  const signBit = 1 << (expBits + manBits);
  if (Number.isNaN(x)) return (expMax << manBits) | (1 << (manBits - 1)); // quiet NaN
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | (expMax << manBits);
  const minNormalExp = 1 - bias;
  if (a < 2 ** minNormalExp) {
    // Subnormal: a multiple of 2^(minNormalExp - manBits). A carry into 1 << manBits is the
    // smallest normal, which is exactly the right encoding.
    return sign | roundEven(a * 2 ** (manBits - minNormalExp));
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a)
    e -= 1; // log2 can round up just below a power of two
  else if (2 ** (e + 1) <= a) e += 1;
  let m = roundEven((a / 2 ** e - 1) * 2 ** manBits);
  if (m === 1 << manBits) {
    m = 0;
    e += 1;
  }
  const biased = e + bias;
  if (biased >= expMax) return sign | (expMax << manBits); // overflow rounds to infinity
  return sign | (biased << manBits) | m;
}

function fromMiniFloat(bits: number, fmt: MiniFloat): number {
  const { expBits, manBits } = fmt;
  const expMax = (1 << expBits) - 1;
  const bias = (1 << (expBits - 1)) - 1;
  const sign = bits & (1 << (expBits + manBits)) ? -1 : 1;
  const exp = (bits >>> manBits) & expMax;
  const man = bits & ((1 << manBits) - 1);
  if (exp === expMax) return man === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * man * 2 ** (1 - bias - manBits);
  return sign * (1 + man / 2 ** manBits) * 2 ** (exp - bias);
}

/** IEEE 754 binary16 bits of `x`, rounded to nearest, ties to even; overflow → ±Infinity. */
export function float16Bits(x: number): number {
  return toMiniFloat(x, HALF);
}

/** The value of IEEE 754 binary16 bits. */
export function float16Value(bits: number): number {
  return fromMiniFloat(bits & 0xffff, HALF);
}

/** bfloat16 bits of `x` (the top half of a float32), rounded to nearest, ties to even. */
export function bfloat16Bits(x: number): number {
  return toMiniFloat(x, BFLOAT);
}

/** The value of bfloat16 bits. */
export function bfloat16Value(bits: number): number {
  return fromMiniFloat(bits & 0xffff, BFLOAT);
}
