/**
 * Triton's binary tensor data extension (`binary_tensor_data`): a body is a JSON header, whose
 * byte length travels in `Inference-Header-Content-Length`, followed by raw little-endian tensor
 * bytes in tensor order. Each binary tensor says how many bytes it owns with
 * `parameters.binary_data_size`. BYTES elements are a 4-byte LE length then the bytes; gRPC's
 * `raw_*_contents` use the same layout, so this module serves the protobuf codec too.
 *
 * Binary tensor data is sliced from the body, not copied.
 */
import { AnyServeError } from "../errors.js";
import { describe } from "./json-util.js";
import { checkTensorData, countMismatch, elementCount, invalidTensor } from "./tensor.js";
import { CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON, type Datatype, type EncodedBody, type InferRequest, type Tensor } from "./types.js";

/**
 * Parses an `Inference-Header-Content-Length` header value (as Node gives it). Absent → undefined;
 * anything but one non-negative decimal integer → INVALID_HEADER.
 */
export function parseHeaderLength(value: string | readonly string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
  if (typeof v !== "string" || !/^\s*\d{1,15}\s*$/.test(v)) {
    throw new AnyServeError("INVALID_HEADER", `Inference-Header-Content-Length must be one non-negative integer, got ${describe(value)}`);
  }
  return Number(v);
}

/** Splits a body at `headerLength` after checking it is an integer within the body. */
export function splitBinaryBody(body: Buffer, headerLength: number): { json: Buffer; binary: Buffer } {
  if (!Number.isSafeInteger(headerLength) || headerLength < 0) {
    throw new AnyServeError(
      "INVALID_HEADER",
      `Inference-Header-Content-Length must be a non-negative integer, got ${describe(headerLength)}`,
    );
  }
  if (headerLength > body.length) {
    throw new AnyServeError(
      "INVALID_HEADER",
      `Inference-Header-Content-Length ${headerLength} is larger than the ${body.length}-byte body`,
    );
  }
  return { json: body.subarray(0, headerLength), binary: body.subarray(headerLength) };
}

/** Hands out consecutive slices of the binary part; every byte must be claimed exactly once. */
export class BinaryCursor {
  private offset = 0;
  constructor(private readonly binary: Buffer) {}

  take(size: number, label: string): Buffer {
    const left = this.binary.length - this.offset;
    if (size > left) {
      throw invalidTensor(`${label}: binary_data_size ${size} is more than the ${left} bytes left in the binary part of the body`);
    }
    const out = this.binary.subarray(this.offset, this.offset + size);
    this.offset += size;
    return out;
  }

  /** Throws when bytes are left over: the `binary_data_size` values must add up to the binary part exactly. */
  finish(): void {
    const left = this.binary.length - this.offset;
    if (left !== 0) {
      throw invalidTensor(
        `the binary part of the body is ${this.binary.length} bytes but binary_data_size values add up to ${this.offset}`,
      );
    }
  }
}

/**
 * Parses length-prefixed BYTES elements and checks their count against the shape. Stops storing
 * after the expected count so many tiny elements cannot amplify a body into millions of objects.
 */
export function parseBytesElements(buf: Buffer, shape: readonly number[], label: string): Buffer[] {
  const count = elementCount(shape);
  const out: Buffer[] = [];
  let seen = 0;
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 4) {
      throw invalidTensor(`${label}: BYTES element ${seen} has a truncated 4-byte length prefix (${buf.length - off} bytes left)`);
    }
    const len = buf.readUInt32LE(off);
    off += 4;
    if (len > buf.length - off) {
      throw invalidTensor(`${label}: BYTES element ${seen} declares ${len} bytes but only ${buf.length - off} remain`);
    }
    if (seen < count) out.push(buf.subarray(off, off + len));
    seen++;
    off += len;
  }
  if (seen !== count) throw countMismatch(label, "BYTES", shape, seen);
  return out;
}

/** Serializes BYTES elements as 4-byte LE length + bytes each. */
export function serializeBytesElements(elements: readonly Buffer[]): Buffer {
  let total = 0;
  for (const e of elements) total += 4 + e.length;
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const e of elements) {
    out.writeUInt32LE(e.length, off);
    e.copy(out, off + 4);
    off += 4 + e.length;
  }
  return out;
}

/** Raw bytes (binary extension or gRPC raw contents) → internal tensor data, checked against the shape. */
export function decodeBinaryTensorData(dt: Datatype, shape: readonly number[], bytes: Buffer, label: string): Buffer | Buffer[] {
  if (dt === "BYTES") return parseBytesElements(bytes, shape, label);
  return checkTensorData(dt, shape, bytes, label);
}

/** Internal tensor data → raw bytes (fixed-size data as is, BYTES length-prefixed). */
export function encodeBinaryTensorData(t: Tensor): Buffer {
  return Array.isArray(t.data) ? serializeBytesElements(t.data) : t.data;
}

/**
 * Which outputs go binary. `all` comes from the request parameter `binary_data_output`; an
 * output's own `parameters.binary_data` overrides it either way, as in Triton.
 */
export interface BinaryOutputChoice {
  all: boolean;
  perOutput?: ReadonlyMap<string, boolean>;
}

/** Reads the binary-output wishes of a request (none when `req` is absent). */
export function binaryOutputChoice(req?: InferRequest): BinaryOutputChoice {
  const all = req?.parameters?.binary_data_output === true;
  const perOutput = new Map<string, boolean>();
  for (const o of req?.outputs ?? []) {
    const b = o.parameters?.binary_data;
    if (typeof b === "boolean") perOutput.set(o.name, b);
  }
  return perOutput.size > 0 ? { all, perOutput } : { all };
}

/** Whether output `name` goes in the binary part under `choice` (no choice: never). */
export function wantsBinary(choice: BinaryOutputChoice | undefined, name: string): boolean {
  if (choice === undefined) return false;
  return choice.perOutput?.get(name) ?? choice.all;
}

/** Joins a JSON header and binary parts into one body; plain JSON when there are no parts. */
export function assembleBody(json: string, parts: readonly Buffer[]): EncodedBody {
  const header = Buffer.from(json, "utf8");
  if (parts.length === 0) return { body: header, contentType: CONTENT_TYPE_JSON };
  return { body: Buffer.concat([header, ...parts]), contentType: CONTENT_TYPE_BINARY, headerLength: header.length };
}
