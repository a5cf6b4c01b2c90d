/**
 * How `create` turns a JS value into bytes and a content type, and how `getValue` turns them
 * back. Bytes stay bytes; typed arrays keep their element type in the content type; every other
 * JSON value (object, array, string, number, boolean, null) is stored as JSON.
 */
import { AnyServeError } from "../errors.js";
import { JSON_TYPE, OCTET_STREAM, checkContentType } from "./ref.js";

/** Typed arrays by OIP datatype name; stored little-endian, as every supported host is. */
const TYPED: Record<string, { new (b: ArrayBuffer, off: number, len: number): ArrayBufferView; BYTES_PER_ELEMENT: number }> = {
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  FP32: Float32Array,
  FP64: Float64Array,
};
export const ARRAY_TYPE = "application/x-anyserve-array";

export interface Encoded {
  bytes: Buffer;
  contentType: string;
}

export function encodeValue(data: unknown, contentType?: string): Encoded {
  if (contentType !== undefined) checkContentType(contentType);
  if (data instanceof Uint8Array) return { bytes: asBuffer(data), contentType: contentType ?? OCTET_STREAM };
  if (data instanceof ArrayBuffer) return { bytes: Buffer.from(data), contentType: contentType ?? OCTET_STREAM };
  if (ArrayBuffer.isView(data)) {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const dtype = Object.keys(TYPED).find((k) => data instanceof TYPED[k]!);
    return { bytes, contentType: contentType ?? (dtype ? `${ARRAY_TYPE}; dtype=${dtype}` : OCTET_STREAM) };
  }
  // A string given an explicit text type is stored as its UTF-8 text, not as a JSON string.
  if (typeof data === "string" && contentType?.startsWith("text/")) return { bytes: Buffer.from(data, "utf8"), contentType };
  if (data === undefined || typeof data === "function" || typeof data === "symbol" || typeof data === "bigint") {
    throw new AnyServeError("INVALID_PARAMETER", `objects.create: expected bytes or a JSON value, got ${typeof data}`);
  }
  let text: string;
  try {
    text = JSON.stringify(data);
  } catch (err) {
    throw new AnyServeError("INVALID_PARAMETER", `objects.create: the value cannot be stored as JSON: ${(err as Error).message}`);
  }
  return { bytes: Buffer.from(text, "utf8"), contentType: contentType ?? JSON_TYPE };
}

export function isJsonType(type: string): boolean {
  return type === JSON_TYPE || type.startsWith(`${JSON_TYPE};`);
}

export function parseJson(bytes: Buffer, id: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new AnyServeError("INVALID_JSON", `object ${id} does not hold JSON: ${(err as Error).message}`);
  }
}

/** JSON → value, typed array → that typed array, `text/*` → string, anything else → Buffer. */
export function decodeValue(bytes: Buffer, contentType: string, id: string): unknown {
  if (isJsonType(contentType)) return parseJson(bytes, id);
  if (contentType.startsWith("text/")) return bytes.toString("utf8");
  const m = /^application\/x-anyserve-array; ?dtype=(\w+)$/.exec(contentType);
  const Ctor = m ? TYPED[m[1]!] : undefined;
  if (Ctor) {
    if (bytes.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) {
      throw new AnyServeError("INVALID_TENSOR", `object ${id}: ${bytes.byteLength} bytes is not a whole number of ${m![1]} elements`);
    }
    // Copy into a fresh, aligned buffer: a Buffer from the pool may sit at an unaligned offset.
    const copy = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(copy).set(bytes);
    return new Ctor(copy, 0, bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
  }
  return bytes;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
