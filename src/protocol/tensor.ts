/**
 * Validation and conversion of ONE tensor between its JSON form (`{name, datatype, shape,
 * parameters?, data}`) and the internal {@link Tensor}.
 *
 * Order of checks matters for safety: the shape is validated and its element count compared with
 * what the body actually holds before anything is allocated by shape, so `[1e9, 1e9]` with three
 * numbers is a 400, not an out-of-memory. Nested data is flattened one level at a time, at most
 * `rank` levels deep, so a 100k-deep `[[[[…` is a 400, not a stack overflow.
 *
 * 64-bit integers in JSON: accepted and emitted as JSON numbers only while they are safe integers
 * (|v| ≤ 2^53 − 1). An INT64/UINT64 output holding a larger value cannot be written as JSON and
 * raises INVALID_TENSOR naming the tensor; ask for binary outputs (or use gRPC) to carry it.
 * Floats: NaN and ±Infinity have no JSON form; they are written as `null` (what `JSON.stringify`
 * does) and a `null` in a *response's* float data decodes as NaN. Requests must send numbers.
 */
import { isUtf8 } from "node:buffer";
import { AnyServeError } from "../errors.js";
import {
  DATATYPE_INFO,
  DATATYPES_LIST,
  bfloat16Bits,
  bfloat16Value,
  float16Bits,
  float16Value,
  isDatatype,
  INT64_RANGE,
  UINT64_RANGE,
  type DatatypeInfo,
} from "./datatypes.js";
import { describe, isPlainObject, readParameters, rejectPrototypeKeys } from "./json-util.js";
import type { Datatype, Parameters, Tensor } from "./types.js";

/** Whether a tensor is a request input or a response output: it only changes the wording of errors. */
export type TensorRole = "input" | "output";

/** A JSON element as emitted: numbers, booleans, or strings (BYTES). */
export type JsonElement = number | boolean | string | null;

/** The one error this module raises: INVALID_TENSOR (400) with `message`. */
export function invalidTensor(message: string): AnyServeError {
  return new AnyServeError("INVALID_TENSOR", message);
}

/** `input 'x'` / `output 'y'`, or `input #2` when the name is unknown. */
export function tensorLabel(role: TensorRole, name: string | number): string {
  return typeof name === "number" ? `${role} #${name}` : `${role} '${name}'`;
}

/** `[2,3]`: a shape as error messages print it. */
export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/**
 * Checks a shape: an array of non-negative safe integers. Rejects `-1`, `1.5`, `"2"` and
 * anything ≥ 2^53, which the spec's uint64 dims allow but no JS number can hold exactly.
 */
export function checkShape(shape: unknown, label: string): number[] {
  if (!Array.isArray(shape)) throw invalidTensor(`${label}: shape must be an array of integers, got ${describe(shape)}`);
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw invalidTensor(`${label}: shape[${i}] must be a non-negative integer below 2^53, got ${describe(d)}`);
    }
  }
  return shape as number[];
}

/**
 * The element count of a valid shape. May exceed 2^53 (then it is inexact but still larger than
 * any real data length, which is all the comparisons need); use {@link countString} for messages.
 */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The exact element count as text, for error messages about huge shapes. */
export function countString(shape: readonly number[]): string {
  return shape.reduce((acc, d) => acc * BigInt(d), 1n).toString();
}

/** `input 'x': expected 6 FP32 elements for shape [2,3], got 5`. */
export function countMismatch(label: string, dt: Datatype, shape: readonly number[], got: number): AnyServeError {
  return invalidTensor(`${label}: expected ${countString(shape)} ${dt} elements for shape ${shapeString(shape)}, got ${got}`);
}

/** Checks that an internal tensor's data matches its datatype and shape (and BOOL bytes are 0/1). */
export function checkTensorData(dt: Datatype, shape: readonly number[], data: unknown, label: string): Buffer | Buffer[] {
  const info = DATATYPE_INFO[dt];
  const count = elementCount(shape);
  if (info.kind === "bytes") {
    if (!Array.isArray(data)) throw invalidTensor(`${label}: BYTES data must be an array of Buffers, got ${describe(data)}`);
    if (data.length !== count) throw countMismatch(label, dt, shape, data.length);
    for (let i = 0; i < data.length; i++) {
      if (!Buffer.isBuffer(data[i])) throw invalidTensor(`${label}: BYTES element ${i} must be a Buffer, got ${describe(data[i])}`);
    }
    return data as Buffer[];
  }
  if (!Buffer.isBuffer(data)) throw invalidTensor(`${label}: ${dt} data must be a Buffer, got ${describe(data)}`);
  const want = count * info.size;
  if (data.length !== want) {
    throw invalidTensor(
      `${label}: expected ${count > Number.MAX_SAFE_INTEGER ? `${countString(shape)}×${info.size}` : want} bytes of ${dt} data for shape ${shapeString(shape)}, got ${data.length}`,
    );
  }
  if (info.kind === "bool") {
    const bad = data.findIndex((b) => b > 1);
    if (bad >= 0) throw invalidTensor(`${label}: BOOL element ${bad} must be byte 0 or 1, got ${data[bad]}`);
  }
  return data;
}

/** Validates an internal tensor (e.g. one a handler built) and returns it. */
export function checkTensor(t: Tensor, role: TensorRole, index = 0): Tensor {
  const label = typeof t?.name === "string" && t.name !== "" ? tensorLabel(role, t.name) : tensorLabel(role, index);
  if (typeof t?.name !== "string" || t.name === "") throw invalidTensor(`${label}: name must be a non-empty string`);
  if (!isDatatype(t.datatype)) throw invalidTensor(`${label}: unknown datatype ${describe(t.datatype)}, expected one of ${DATATYPES_LIST}`);
  checkShape(t.shape, label);
  checkTensorData(t.datatype, t.shape, t.data, label);
  return t;
}

/** The parts of a JSON tensor other than its data, validated. */
export interface JsonTensorHeader {
  name: string;
  label: string;
  datatype: Datatype;
  shape: number[];
  /** Tensor parameters minus the wire-only `binary_data_size`. */
  parameters?: Parameters;
  /** `parameters.binary_data_size`, when the data travels in the binary part of the body. */
  binaryDataSize?: number;
  /** The raw `data` field, still unchecked. */
  data: unknown;
}

/** Validates a JSON tensor object's name, datatype, shape and parameters. */
export function readJsonTensorHeader(obj: unknown, role: TensorRole, index: number): JsonTensorHeader {
  let label = tensorLabel(role, index);
  if (!isPlainObject(obj)) throw invalidTensor(`${label} must be an object, got ${describe(obj)}`);
  rejectPrototypeKeys(obj, label);
  const { name } = obj;
  if (typeof name !== "string" || name === "") throw invalidTensor(`${label}: name must be a non-empty string, got ${describe(name)}`);
  label = tensorLabel(role, name);
  const { datatype } = obj;
  if (!isDatatype(datatype)) throw invalidTensor(`${label}: unknown datatype ${describe(datatype)}, expected one of ${DATATYPES_LIST}`);
  const shape = checkShape(obj.shape, label);
  const params = readParameters(obj.parameters, label);
  const header: JsonTensorHeader = { name, label, datatype, shape, data: obj.data };
  if (params !== undefined && Object.hasOwn(params, "binary_data_size")) {
    const size = params.binary_data_size;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      throw invalidTensor(`${label}: parameter binary_data_size must be a non-negative integer, got ${describe(size)}`);
    }
    header.binaryDataSize = size;
    delete params.binary_data_size;
  }
  if (params !== undefined && Object.keys(params).length > 0) header.parameters = params;
  return header;
}

/**
 * Flattens JSON `data` (flat or nested row-major) one level at a time. Nesting may go at most
 * `rank` levels deep and must be rectangular at every level. Returns the leaves in order.
 */
export function flattenJsonData(data: unknown, shape: readonly number[], dt: Datatype, label: string): unknown[] {
  if (!Array.isArray(data)) {
    // A bare scalar is accepted for a one-element tensor; anything else must be an array.
    if (elementCount(shape) === 1 && data !== null && typeof data !== "object" && data !== undefined) return [data];
    throw invalidTensor(`${label}: data must be an array, got ${describe(data)}`);
  }
  const maxDepth = Math.max(shape.length, 1);
  let level: unknown[] = data;
  for (let depth = 1; level.length > 0; depth++) {
    let arrays = 0;
    for (const item of level) if (Array.isArray(item)) arrays++;
    if (arrays === 0) break;
    if (depth >= maxDepth)
      throw invalidTensor(`${label}: data is nested deeper than the rank ${shape.length} of shape ${shapeString(shape)}`);
    if (arrays !== level.length) throw invalidTensor(`${label}: nested data is ragged: depth ${depth} mixes arrays and ${dt} values`);
    const width = (level[0] as unknown[]).length;
    for (const item of level) {
      const len = (item as unknown[]).length;
      if (len !== width)
        throw invalidTensor(`${label}: nested data is ragged: at depth ${depth} expected rows of ${width} items, got ${len}`);
    }
    level = level.flat(1);
  }
  if (level.length !== elementCount(shape)) throw countMismatch(label, dt, shape, level.length);
  return level;
}

/** "an INT8", "a UINT8", "an FP32", "a BOOL": for readable messages. */
function withArticle(dt: Datatype): string {
  return `${/^(INT|FP)/.test(dt) ? "an" : "a"} ${dt}`;
}

function elementError(label: string, i: number, what: string, v: unknown): AnyServeError {
  return invalidTensor(`${label}: element ${i} must be ${what}, got ${describe(v)}`);
}

function toBigInt(v: unknown, info: DatatypeInfo, label: string, i: number): bigint {
  const range = info.kind === "int" ? INT64_RANGE : UINT64_RANGE;
  const what = `${withArticle(info.datatype)} integer`;
  if (typeof v === "bigint") {
    if (v < range.min || v > range.max) throw elementError(label, i, `${what} in range`, v);
    return v;
  }
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw elementError(label, i, `${what} (a safe integer in JSON)`, v);
  if (v < info.min! || v > info.max!) throw elementError(label, i, `${what} in [${info.min}, ${info.max}]`, v);
  return BigInt(v);
}

/**
 * Encodes flat JS values as internal tensor data. Accepts what JSON can carry (numbers, booleans,
 * strings) plus, for callers in `values.ts`, bigints for integer types and Buffers for BYTES.
 * `allowNullFloat` lets a `null` float (a NaN that went through JSON) decode as NaN.
 */
export function encodeElements(dt: Datatype, values: readonly unknown[], label: string, allowNullFloat = false): Buffer | Buffer[] {
  const info = DATATYPE_INFO[dt];
  const n = values.length;
  if (info.kind === "bytes") {
    return values.map((v, i) => {
      if (typeof v === "string") return Buffer.from(v, "utf8");
      if (v instanceof Uint8Array) return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      throw elementError(label, i, "a string (BYTES)", v);
    });
  }
  const buf = Buffer.alloc(n * info.size);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    switch (info.kind) {
      case "bool":
        if (v === true || v === 1) buf[i] = 1;
        else if (v !== false && v !== 0) throw elementError(label, i, "a BOOL (true/false or 0/1)", v);
        break;
      case "int":
      case "uint":
        if (info.size === 8) {
          const b = toBigInt(v, info, label, i);
          if (info.kind === "int") dv.setBigInt64(i * 8, b, true);
          else dv.setBigUint64(i * 8, b, true);
        } else {
          const num = typeof v === "bigint" ? Number(v) : v;
          if (typeof num !== "number" || !Number.isInteger(num) || num < info.min! || num > info.max!) {
            throw elementError(label, i, `${withArticle(dt)} integer in [${info.min}, ${info.max}]`, v);
          }
          if (info.size === 1) buf[i] = num & 0xff;
          else if (info.size === 2) dv.setUint16(i * 2, num & 0xffff, true);
          else dv.setUint32(i * 4, num >>> 0, true);
        }
        break;
      default: {
        let num: number;
        if (typeof v === "number") num = v;
        else if (v === null && allowNullFloat) num = NaN;
        else throw elementError(label, i, `${withArticle(dt)} number`, v);
        if (dt === "FP32") dv.setFloat32(i * 4, num, true);
        else if (dt === "FP64") dv.setFloat64(i * 8, num, true);
        else dv.setUint16(i * 2, dt === "FP16" ? float16Bits(num) : bfloat16Bits(num), true);
      }
    }
  }
  return buf;
}

/** Converts a validated JSON header with inline `data` to internal tensor data. */
export function jsonDataToTensorData(h: JsonTensorHeader, role: TensorRole): Buffer | Buffer[] {
  const flat = flattenJsonData(h.data, h.shape, h.datatype, h.label);
  return encodeElements(h.datatype, flat, h.label, role === "output");
}

/**
 * Internal tensor → flat JSON `data`. Throws INVALID_TENSOR for values JSON cannot carry exactly:
 * 64-bit integers beyond ±(2^53 − 1) and BYTES elements that are not valid UTF-8.
 */
export function tensorToJsonData(t: Tensor, role: TensorRole): JsonElement[] {
  const label = tensorLabel(role, t.name);
  const info = DATATYPE_INFO[t.datatype];
  if (Array.isArray(t.data)) {
    return t.data.map((b, i) => {
      if (!isUtf8(b))
        throw invalidTensor(`${label}: BYTES element ${i} is not valid UTF-8 and cannot be written as JSON; request binary data instead`);
      return b.toString("utf8");
    });
  }
  const buf = t.data;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = info.size === 0 ? 0 : buf.length / info.size;
  const out = new Array<JsonElement>(n);
  for (let i = 0; i < n; i++) {
    switch (t.datatype) {
      case "BOOL":
        out[i] = buf[i] !== 0;
        break;
      case "UINT8":
        out[i] = buf[i]!;
        break;
      case "INT8":
        out[i] = dv.getInt8(i);
        break;
      case "UINT16":
        out[i] = dv.getUint16(i * 2, true);
        break;
      case "INT16":
        out[i] = dv.getInt16(i * 2, true);
        break;
      case "UINT32":
        out[i] = dv.getUint32(i * 4, true);
        break;
      case "INT32":
        out[i] = dv.getInt32(i * 4, true);
        break;
      case "INT64":
      case "UINT64": {
        const b = t.datatype === "INT64" ? dv.getBigInt64(i * 8, true) : dv.getBigUint64(i * 8, true);
        if (b > BigInt(Number.MAX_SAFE_INTEGER) || b < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw invalidTensor(
            `${label}: ${t.datatype} element ${i} is ${b}, beyond the safe-integer range JSON can carry; request binary data instead`,
          );
        }
        out[i] = Number(b);
        break;
      }
      case "FP32":
        out[i] = dv.getFloat32(i * 4, true);
        break;
      case "FP64":
        out[i] = dv.getFloat64(i * 8, true);
        break;
      case "FP16":
        out[i] = float16Value(dv.getUint16(i * 2, true));
        break;
      default:
        out[i] = bfloat16Value(dv.getUint16(i * 2, true));
        break; // BF16
    }
  }
  return out;
}
