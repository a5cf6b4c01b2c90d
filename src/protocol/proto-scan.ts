/**
 * Reads the model name and version of a protobuf `ModelInferRequest` without decoding it: the
 * gateway routes on fields 1 and 2 and forwards the body untouched, so it must not pay for (or
 * trust) a full decode of possibly hundreds of megabytes of tensor data.
 *
 * Only the top-level framing is walked; every other field is skipped by wire type. Proto3 strings
 * use "last one wins", so the whole top level is scanned.
 */
import { isUtf8 } from "node:buffer";
import { AnyServeError } from "../errors.js";

type Fail = (why: string) => AnyServeError;

/** Reads a base-128 varint; returns [value, nextOffset]. Values above 2^53 are rejected. */
function readVarint(buf: Buffer, off: number, malformed: Fail): [number, number] {
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
 * Walks the top-level fields of a protobuf message, checking the framing (tags, varints, lengths).
 * `visit` sees each field's number and wire type, and for length-delimited fields their byte
 * range. protobufjs clamps a string that runs past the end of the body instead of failing; the
 * codec runs this walk first so a truncated body is INVALID_PROTOBUF, not a shortened string.
 * @throws AnyServeError INVALID_PROTOBUF on any framing error
 */
export function walkFields(
  body: Buffer,
  visit?: (field: number, wireType: number, start: number, end: number) => void,
  what = "ModelInferRequest",
): void {
  const fail = (why: string): AnyServeError => new AnyServeError("INVALID_PROTOBUF", `body is not a valid ${what}: ${why}`);
  let off = 0;
  while (off < body.length) {
    const tagStart = off;
    let key: number;
    [key, off] = readVarint(body, off, fail);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0 || field > 0x1fffffff) throw fail(`invalid field number ${field} at byte ${tagStart}`);
    switch (wireType) {
      case 0: // varint
        [, off] = readVarint(body, off, fail);
        visit?.(field, wireType, off, off);
        break;
      case 1: // 64-bit
        off += 8;
        visit?.(field, wireType, off, off);
        break;
      case 2: {
        // length-delimited
        let len: number;
        [len, off] = readVarint(body, off, fail);
        if (len > body.length - off) throw fail(`field ${field} claims ${len} bytes, only ${body.length - off} remain`);
        visit?.(field, wireType, off, off + len);
        off += len;
        break;
      }
      case 5: // 32-bit
        off += 4;
        visit?.(field, wireType, off, off);
        break;
      default: // groups (3, 4) do not occur in proto3 messages; 6 and 7 are not wire types
        throw fail(`unexpected wire type ${wireType} at byte ${tagStart}`);
    }
    if (off > body.length) throw fail(`field ${field} is truncated`);
  }
}

/**
 * Scans a serialized `ModelInferRequest` for `model_name` (1) and `model_version` (2) — or any
 * message with the same two leading string fields (`ModelReadyRequest`, `ModelMetadataRequest`:
 * `name`, `version`), named by `what` in errors. Missing fields are `""`, as in proto3.
 * @throws AnyServeError INVALID_PROTOBUF on any framing error (bad tag, truncation, wrong wire type);
 *   INVALID_CAPABILITY for a name or version that is not UTF-8 (it names the capability to route by:
 *   a replaced character would route to a model nobody asked for)
 */
export function readModelName(body: Buffer, what = "ModelInferRequest"): { modelName: string; modelVersion: string } {
  let modelName = "";
  let modelVersion = "";
  walkFields(
    body,
    (field, wireType, start, end) => {
      if (field !== 1 && field !== 2) return;
      if (wireType !== 2) throw new AnyServeError("INVALID_PROTOBUF", `body is not a valid ${what}: field ${field} must be a string`);
      const bytes = body.subarray(start, end);
      if (!isUtf8(bytes)) {
        throw new AnyServeError(
          "INVALID_CAPABILITY",
          `${what}: the model ${field === 1 ? "name" : "version"} is not valid UTF-8 (${end - start} bytes, starting ${bytes.subarray(0, 16).toString("hex")})`,
        );
      }
      if (field === 1) modelName = bytes.toString("utf8");
      else modelVersion = bytes.toString("utf8");
    },
    what,
  );
  return { modelName, modelVersion };
}

/** A length-delimited string field: tag, length, UTF-8 bytes. */
function stringField(field: number, text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const head: number[] = [field * 8 + 2];
  for (let n = bytes.length; ; n = Math.floor(n / 128)) {
    if (n < 0x80) {
      head.push(n);
      break;
    }
    head.push((n % 0x80) | 0x80);
  }
  return Buffer.concat([Buffer.from(head), bytes]);
}

/**
 * A serialized `ModelInferRequest` with `model_name` (1) and `model_version` (2) set to `name` and
 * `version`, every other field kept as it is: the gateway names the model a foreign OIP gRPC server
 * expects without decoding the tensors (the rest is copied once, as runs of bytes).
 * @throws AnyServeError INVALID_PROTOBUF on any framing error
 */
export function withModelName(body: Buffer, name: string, version: string | undefined): Buffer {
  const parts: Buffer[] = [stringField(1, name)];
  if (version !== undefined && version !== "") parts.push(stringField(2, version));
  // Each visit's `end` is where its field ends (see walkFields): a field spans [previous end, end).
  let keepFrom = 0;
  let previous = 0;
  walkFields(body, (field, _wireType, _start, end) => {
    if (field === 1 || field === 2) {
      if (previous > keepFrom) parts.push(body.subarray(keepFrom, previous));
      keepFrom = end;
    }
    previous = end;
  });
  if (body.length > keepFrom) parts.push(body.subarray(keepFrom));
  return Buffer.concat(parts);
}

/**
 * Splits a serialized `ModelStreamInferResponse`: `error_message` (1) and the still-encoded
 * `infer_response` (2), which a gRPC caller gets unchanged.
 * @throws AnyServeError INVALID_PROTOBUF on any framing error
 */
export function readStreamResponse(body: Buffer): { errorMessage: string; inferResponse: Buffer | undefined } {
  let errorMessage = "";
  let inferResponse: Buffer | undefined;
  walkFields(
    body,
    (field, wireType, start, end) => {
      if (wireType !== 2) return;
      if (field === 1) errorMessage = body.toString("utf8", start, end);
      else if (field === 2) inferResponse = body.subarray(start, end);
    },
    "ModelStreamInferResponse",
  );
  return { errorMessage, inferResponse };
}
