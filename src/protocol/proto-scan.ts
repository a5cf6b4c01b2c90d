/**
 * Reads the model name and version of a protobuf `ModelInferRequest` without decoding it: the
 * gateway routes on fields 1 and 2 and forwards the body untouched, so it must not pay for (or
 * trust) a full decode of possibly hundreds of megabytes of tensor data.
 *
 * Only the top-level framing is walked; every other field is skipped by wire type. Proto3 strings
 * use "last one wins", so the whole top level is scanned.
 */
import { AnyServeError } from "../errors.js";

function malformed(why: string): AnyServeError {
  return new AnyServeError("INVALID_PROTOBUF", `request is not a valid ModelInferRequest: ${why}`);
}

/** Reads a base-128 varint; returns [value, nextOffset]. Values above 2^53 are rejected. */
function readVarint(buf: Buffer, off: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (off >= buf.length) throw malformed(`truncated varint at byte ${off}`);
    const b = buf[off++]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      if (value > Number.MAX_SAFE_INTEGER) throw malformed("varint out of range");
      return [value, off];
    }
    scale *= 128;
  }
  throw malformed(`varint longer than 10 bytes at byte ${off}`);
}

/**
 * Scans a serialized `ModelInferRequest` for `model_name` (1) and `model_version` (2).
 * Missing fields are `""`, as in proto3.
 * @throws AnyServeError INVALID_PROTOBUF on any framing error (bad tag, truncation, wrong wire type)
 */
export function readModelName(body: Buffer): { modelName: string; modelVersion: string } {
  let modelName = "";
  let modelVersion = "";
  let off = 0;
  while (off < body.length) {
    const tagStart = off;
    let key: number;
    [key, off] = readVarint(body, off);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0 || field > 0x1fffffff) throw malformed(`invalid field number ${field} at byte ${tagStart}`);
    switch (wireType) {
      case 0: // varint
        [, off] = readVarint(body, off);
        break;
      case 1: // 64-bit
        off += 8;
        break;
      case 2: { // length-delimited
        let len: number;
        [len, off] = readVarint(body, off);
        if (len > body.length - off) throw malformed(`field ${field} claims ${len} bytes, only ${body.length - off} remain`);
        if (field === 1) modelName = body.toString("utf8", off, off + len);
        else if (field === 2) modelVersion = body.toString("utf8", off, off + len);
        off += len;
        break;
      }
      case 5: // 32-bit
        off += 4;
        break;
      default: // groups (3, 4) do not occur in proto3 messages; 6 and 7 are not wire types
        throw malformed(`unexpected wire type ${wireType} at byte ${tagStart}`);
    }
    if ((field === 1 || field === 2) && wireType !== 2) throw malformed(`field ${field} must be a string`);
    if (off > body.length) throw malformed(`field ${field} is truncated`);
  }
  return { modelName, modelVersion };
}
