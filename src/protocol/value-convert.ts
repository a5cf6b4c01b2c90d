/**
 * Plain JS values ↔ single tensors, for handlers (reading inputs, returning results) and clients.
 * Re-exported from `values.ts`, which documents the rules with examples.
 */
import { AnyServeError } from "../errors.js";
import { DATATYPE_INFO, INT64_RANGE, UINT64_RANGE, bfloat16Value, float16Value } from "./datatypes.js";
import { describe } from "./json-util.js";
import { checkTensorData, encodeElements, invalidTensor } from "./tensor.js";
import type { Datatype, Tensor } from "./types.js";

/** What {@link tensorToValues} returns: a typed array for numbers, arrays for BOOL and BYTES. */
export type TensorValues =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array
  | boolean[]
  | string[];

/** `content_type` parameter marking a BYTES tensor that holds JSON text (a non-tensor value). */
export const JSON_CONTENT_TYPE = "application/json";
/** `content_type` parameter marking a BYTES tensor that holds opaque blobs (from Buffers). */
export const BLOB_CONTENT_TYPE = "application/octet-stream";

// Internal data is little-endian; a typed-array view is only right on a little-endian host.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

type AnyTypedArray = Exclude<TensorValues, boolean[] | string[]> | Uint8ClampedArray;
type ViewCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => AnyTypedArray;
type CopyCtor = new (length: number) => AnyTypedArray;

/**
 * Decodes a tensor to flat (row-major) JS values: numeric types as the matching typed array
 * (UINT8→Uint8Array … INT64→BigInt64Array, UINT64→BigUint64Array, FP32→Float32Array,
 * FP64→Float64Array), FP16/BF16 converted into a Float32Array, BOOL as `boolean[]`, BYTES as
 * UTF-8 `string[]`. The typed array is a zero-copy VIEW of the tensor's bytes when their
 * alignment allows (else a copy): treat it as read-only, since it may alias the request body.
 *
 * @example
 * ```ts
 * const x = tensorToValues(req.inputs[0]); // Float32Array for an FP32 input
 * const sum = x.reduce((a, b) => a + b, 0);
 * ```
 */
export function tensorToValues(t: Tensor): TensorValues {
  const info = DATATYPE_INFO[t.datatype];
  if (Array.isArray(t.data)) return t.data.map((b) => b.toString("utf8"));
  const buf = t.data;
  const n = buf.length / info.size;
  if (info.kind === "bool") return Array.from(buf, (b) => b !== 0);
  if (info.kind === "half") {
    const out = new Float32Array(n);
    const decode = t.datatype === "FP16" ? float16Value : bfloat16Value;
    for (let i = 0; i < n; i++) out[i] = decode(buf.readUInt16LE(i * 2));
    return out;
  }
  if (LITTLE_ENDIAN && buf.byteOffset % info.size === 0) {
    return new (info.array as unknown as ViewCtor)(buf.buffer, buf.byteOffset, n) as TensorValues;
  }
  const copy = new (info.array as unknown as CopyCtor)(n);
  const bytes = Buffer.from(copy.buffer, copy.byteOffset, copy.byteLength);
  buf.copy(bytes);
  if (!LITTLE_ENDIAN) swapToHost(bytes, info.size);
  return copy as TensorValues;
}

function swapToHost(bytes: Buffer, size: number): void {
  if (size === 2) bytes.swap16();
  else if (size === 4) bytes.swap32();
  else if (size === 8) bytes.swap64();
}

/**
 * The elements of a BYTES tensor as Buffers (views, not copies), for binary payloads that are not
 * text. Throws INVALID_TENSOR for any other datatype.
 *
 * @example
 * ```ts
 * const [image] = tensorToBuffers(req.inputs[0]); // raw JPEG bytes
 * ```
 */
export function tensorToBuffers(t: Tensor): Buffer[] {
  if (!Array.isArray(t.data)) throw invalidTensor(`tensor '${t.name}': expected a BYTES tensor, got ${t.datatype}`);
  return t.data;
}

const TYPED_ARRAY_TYPES: ReadonlyArray<[abstract new (...a: never[]) => unknown, Datatype]> = [
  [Uint8Array, "UINT8"],
  [Uint8ClampedArray, "UINT8"],
  [Int8Array, "INT8"],
  [Uint16Array, "UINT16"],
  [Int16Array, "INT16"],
  [Uint32Array, "UINT32"],
  [Int32Array, "INT32"],
  [BigInt64Array, "INT64"],
  [BigUint64Array, "UINT64"],
  [Float32Array, "FP32"],
  [Float64Array, "FP64"],
];

function typedArrayDatatype(v: ArrayBufferView): Datatype | undefined {
  for (const [ctor, dt] of TYPED_ARRAY_TYPES) if (v instanceof ctor) return dt;
  return undefined;
}

/** The bytes of a typed array as little-endian internal data: a view on LE hosts, a swapped copy otherwise. */
function typedArrayBytes(v: ArrayBufferView, size: number): Buffer {
  const view = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (LITTLE_ENDIAN || size === 1) return view;
  const copy = Buffer.from(view);
  swapToHost(copy, size);
  return copy;
}

/** Shape and row-major leaves of a rectangular nested array, or `undefined` when it is ragged. Iterative. */
export function rectangularLeaves(value: readonly unknown[]): { shape: number[]; leaves: unknown[] } | undefined {
  const shape: number[] = [];
  let cur: unknown = value;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0];
  }
  let level: unknown[] = value as unknown[];
  for (let depth = 1; depth < shape.length; depth++) {
    const width = shape[depth]!;
    for (const item of level) if (!Array.isArray(item) || item.length !== width) return undefined;
    level = level.flat(1);
  }
  for (const item of level) if (Array.isArray(item)) return undefined;
  return { shape, leaves: level };
}

function bytesTensor(name: string, elements: Buffer[], shape: number[], contentType?: string): Tensor {
  const t: Tensor = { name, datatype: "BYTES", shape, data: elements };
  if (contentType !== undefined) t.parameters = { content_type: contentType };
  return t;
}

function bigintDatatype(v: bigint): Datatype | undefined {
  if (v >= INT64_RANGE.min && v <= INT64_RANGE.max) return "INT64";
  return v >= UINT64_RANGE.min && v <= UINT64_RANGE.max ? "UINT64" : undefined;
}

/**
 * Infers a tensor from a value without falling back to JSON: returns `undefined` for values that
 * are not "tensor-able" (objects, null, mixed or ragged arrays).
 */
/** Marks ObjRef instances (src/objects/ref.ts) without importing the object system here. */
export const OBJREF_BRAND = Symbol.for("anyserve.objref");

function isObjRef(value: unknown): boolean {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[OBJREF_BRAND] === true;
}

export function tryInferTensor(name: string, value: unknown): Tensor | undefined {
  const label = `value '${name}'`;
  if (typeof value === "string") return bytesTensor(name, [Buffer.from(value, "utf8")], [1]);
  // An ObjRef travels as its string form, which the receiving store parses back.
  if (isObjRef(value)) return bytesTensor(name, [Buffer.from(String(value), "utf8")], [1]);
  if (Buffer.isBuffer(value)) return bytesTensor(name, [value], [1], BLOB_CONTENT_TYPE);
  if (typeof value === "number") return { name, datatype: "FP64", shape: [1], data: encodeElements("FP64", [value], label) as Buffer };
  if (typeof value === "boolean") return { name, datatype: "BOOL", shape: [1], data: Buffer.from([value ? 1 : 0]) };
  if (typeof value === "bigint") {
    const dt = bigintDatatype(value);
    return dt && { name, datatype: dt, shape: [1], data: encodeElements(dt, [value], label) as Buffer };
  }
  if (ArrayBuffer.isView(value)) {
    const dt = typedArrayDatatype(value);
    if (dt === undefined) return undefined; // DataView: no element type
    const size = DATATYPE_INFO[dt].size;
    return { name, datatype: dt, shape: [value.byteLength / size], data: typedArrayBytes(value, size) };
  }
  if (!Array.isArray(value)) return undefined;
  const rect = rectangularLeaves(value);
  if (rect === undefined) return undefined;
  const { shape, leaves } = rect;
  const kinds = new Set(leaves.map((v) => (Buffer.isBuffer(v) ? "buffer" : typeof v)));
  if (kinds.size > 1) return undefined;
  const kind = kinds.values().next().value ?? "number";
  switch (kind) {
    case "number":
      return { name, datatype: "FP64", shape, data: encodeElements("FP64", leaves, label) };
    case "boolean":
      return { name, datatype: "BOOL", shape, data: encodeElements("BOOL", leaves, label) };
    case "string":
      return { name, datatype: "BYTES", shape, data: encodeElements("BYTES", leaves, label) };
    case "buffer":
      return bytesTensor(name, leaves as Buffer[], shape, BLOB_CONTENT_TYPE);
    case "bigint": {
      const dts = new Set((leaves as bigint[]).map(bigintDatatype));
      const dt = dts.has(undefined) ? undefined : dts.has("UINT64") ? "UINT64" : "INT64";
      return dt && { name, datatype: dt, shape, data: encodeElements(dt, leaves, label) };
    }
    default:
      return undefined;
  }
}

/** Any value as a BYTES [1] tensor of JSON text, marked `content_type: application/json`. */
function jsonTensor(name: string, value: unknown): Tensor {
  let text: string | undefined;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch (err) {
    throw invalidTensor(`value '${name}' cannot be converted to a tensor or to JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw invalidTensor(`value '${name}' cannot be converted to a tensor or to JSON: ${describe(value)}`);
  return bytesTensor(name, [Buffer.from(text, "utf8")], [1], JSON_CONTENT_TYPE);
}

/** Converts a value to an explicit datatype (see `valueToTensor` in values.ts). */
function convertTo(name: string, value: unknown, dt: Datatype): Tensor {
  const label = `value '${name}'`;
  const info = DATATYPE_INFO[dt];
  if (ArrayBuffer.isView(value) && !Buffer.isBuffer(value)) {
    if (typedArrayDatatype(value) === dt) return tryInferTensor(name, value)!;
    const leaves = Array.from(
      (value instanceof DataView
        ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
        : value) as unknown as ArrayLike<unknown>,
    );
    return { name, datatype: dt, shape: [leaves.length], data: encodeElements(dt, leaves, label) };
  }
  if (Buffer.isBuffer(value)) {
    if (dt === "BYTES") return bytesTensor(name, [value], [1], BLOB_CONTENT_TYPE);
    // A Buffer given with a fixed-size datatype is that type's raw little-endian bytes (e.g. FP16 bits).
    if (value.length % info.size !== 0) {
      throw invalidTensor(`${label}: ${value.length} bytes is not a whole number of ${info.size}-byte ${dt} elements`);
    }
    const shape = [value.length / info.size];
    return { name, datatype: dt, shape, data: checkTensorData(dt, shape, value, label) };
  }
  if (Array.isArray(value)) {
    const rect = rectangularLeaves(value);
    if (rect === undefined) throw invalidTensor(`${label}: nested array is ragged and cannot be a ${dt} tensor`);
    return { name, datatype: dt, shape: rect.shape, data: encodeElements(dt, rect.leaves, label) };
  }
  if (value !== null && typeof value === "object") {
    if (dt === "BYTES") return jsonTensor(name, value);
    throw invalidTensor(`${label}: expected ${dt} values, got ${describe(value)}`);
  }
  return { name, datatype: dt, shape: [1], data: encodeElements(dt, [value], label) };
}

/**
 * Converts a JS value to a tensor. Without `datatype` the datatype and shape are inferred:
 *
 * | value | tensor |
 * |---|---|
 * | `string` / `string[]` (nested) | BYTES `[1]` / the array's shape, UTF-8 |
 * | `Buffer` / `Buffer[]` | BYTES `[1]` / `[n]`, one blob per element, `content_type: application/octet-stream` |
 * | `number` / `number[]` (nested, rectangular) | FP64 `[1]` / the nested shape |
 * | `boolean` / `boolean[]` | BOOL |
 * | `bigint` / `bigint[]` | INT64 (UINT64 if a value only fits there) |
 * | typed array (`Float32Array`, `Int32Array`, `BigInt64Array`, plain `Uint8Array`, …) | its type, `[length]`, zero-copy |
 * | anything else (objects, `null`, mixed or ragged arrays) | BYTES `[1]` of JSON text, `content_type: application/json` |
 *
 * With `datatype`, the value is converted to it (range-checked): scalars become `[1]`, nested
 * arrays keep their shape, typed arrays are converted element-wise, and a Buffer given with a
 * fixed-size datatype is taken as that type's raw little-endian bytes (e.g. FP16 bits).
 *
 * @example
 * ```ts
 * valueToTensor("x", [[1, 2, 3], [4, 5, 6]]);      // FP64 [2,3]
 * valueToTensor("x", new Float32Array([1, 2]));    // FP32 [2], shares the array's memory
 * valueToTensor("x", [0.5, 1.5], "FP16");          // FP16 [2]
 * valueToTensor("meta", { labels: ["cat"] });      // BYTES [1] holding '{"labels":["cat"]}'
 * ```
 */
export function valueToTensor(name: string, value: unknown, datatype?: Datatype): Tensor {
  if (typeof name !== "string" || name === "") throw new AnyServeError("INVALID_TENSOR", "tensor name must be a non-empty string");
  if (datatype !== undefined) {
    if (!Object.hasOwn(DATATYPE_INFO, datatype)) throw invalidTensor(`value '${name}': unknown datatype ${describe(datatype)}`);
    return convertTo(name, value, datatype);
  }
  return tryInferTensor(name, value) ?? jsonTensor(name, value);
}
