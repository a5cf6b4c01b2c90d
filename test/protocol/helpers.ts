/** Shared fixtures for the protocol tests: one sample tensor per datatype, and an error matcher. */
import assert from "node:assert/strict";
import { AnyServeError, type ErrorCode } from "../../src/errors.js";
import { decodeJsonRequest } from "../../src/protocol/json-codec.js";
import { DATATYPES, type Datatype, type Tensor } from "../../src/protocol/types.js";

/** Asserts `fn` throws an AnyServeError with `code` whose message contains every `parts` string. */
export function expectError(fn: () => unknown, code: ErrorCode, ...parts: string[]): AnyServeError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof AnyServeError, `expected AnyServeError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `wrong code for: ${caught.message}`);
  for (const p of parts) assert.ok(caught.message.includes(p), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(p)}`);
  return caught;
}

/** JSON-exact sample data per datatype, shape [2,3] (values chosen to be exact in the type). */
export const SAMPLES: Record<Datatype, unknown[]> = {
  BOOL: [true, false, true, false, false, true],
  UINT8: [0, 255, 1, 2, 3, 128],
  UINT16: [0, 65535, 1, 2, 3, 40000],
  UINT32: [0, 4294967295, 1, 2, 3, 3000000000],
  UINT64: [0, Number.MAX_SAFE_INTEGER, 1, 2, 3, 2 ** 40],
  INT8: [-128, 127, 0, -1, 1, 5],
  INT16: [-32768, 32767, 0, -1, 1, 5],
  INT32: [-2147483648, 2147483647, 0, -1, 1, 5],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 0, -1, 1, -(2 ** 40)],
  FP16: [0, -2, 0.5, 65504, 2 ** -14, 2 ** -24],
  FP32: [1.5, -0.25, 3.4028234663852886e38, 2 ** -149, 0, 16777216],
  FP64: [Math.PI, -1e308, 5e-324, 0, 1, -2.5],
  BYTES: ["a", "", "héllo ✓", "x", "y", "z"],
  BF16: [1, -2, 0.5, 3.3895313892515355e38, 2 ** -126, 0],
};

export const ALL_DATATYPES: readonly Datatype[] = DATATYPES;

/** A JSON request body with one [2,3] input per datatype, named after the datatype. */
export function allTypesJson(nested = false): Record<string, unknown> {
  return {
    id: "req-1",
    inputs: ALL_DATATYPES.map((dt) => ({
      name: `in_${dt}`,
      datatype: dt,
      shape: [2, 3],
      data: nested ? [SAMPLES[dt].slice(0, 3), SAMPLES[dt].slice(3)] : SAMPLES[dt],
    })),
  };
}

/** Internal tensors for every datatype (decoded from the JSON samples). */
export function allTypesTensors(): Tensor[] {
  return decodeJsonRequest(Buffer.from(JSON.stringify(allTypesJson()))).inputs;
}

export function json(obj: unknown): Buffer {
  return Buffer.from(JSON.stringify(obj));
}
