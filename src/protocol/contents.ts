/**
 * Typed tensor contents — the gRPC `InferTensorContents` message (`bool_contents`, `int_contents`,
 * `int64_contents`, `uint_contents`, `uint64_contents`, `fp32_contents`, `fp64_contents`,
 * `bytes_contents`) — and the seed's JSON form of it.
 *
 * The seed's HTTP clients (`POST /infer/json`, `/infer/stream`) send tensors as
 * `{name, datatype, shape, contents: {bytes_contents: ["hi"]}}` rather than OIP REST's `data`,
 * with BYTES elements as UTF-8 strings, and read answers in the same form. A JSON request whose
 * inputs come that way is decoded here into the same internal tensors as any other, and marked
 * (`InferRequest.jsonForm = "contents"`) so that its answer is written back in that form
 * ({@link encodeContentsJsonResponse}): `{model_name, model_version, id, outputs: [{name,
 * datatype, shape, contents: {...}}]}`. In that form `datatype` may be left out (it follows from
 * the one contents field used: `int_contents` → INT32, `bytes_contents` → BYTES, …) and `shape`
 * too (a flat `[n]`).
 */
import type protobuf from "protobufjs";
import { DATATYPE_INFO, type ContentsField } from "./datatypes.js";
import { describe, isPlainObject, rejectPrototypeKeys } from "./json-util.js";
import { assembleBody } from "./binary-ext.js";
import {
  checkTensor,
  countMismatch,
  elementCount,
  encodeElements,
  invalidTensor,
  tensorLabel,
  tensorToJsonData,
  type TensorRole,
} from "./tensor.js";
import type { Datatype, EncodedBody, InferResponse, Tensor } from "./types.js";

/** Each contents field, with the datatype a tensor that names no datatype gets from it. */
const FIELD_DATATYPE: Readonly<Record<ContentsField, Datatype>> = {
  bool_contents: "BOOL",
  int_contents: "INT32",
  int64_contents: "INT64",
  uint_contents: "UINT32",
  uint64_contents: "UINT64",
  fp32_contents: "FP32",
  fp64_contents: "FP64",
  bytes_contents: "BYTES",
};
const FIELDS = Object.keys(FIELD_DATATYPE).join(", ");

function isField(key: string): key is ContentsField {
  return Object.hasOwn(FIELD_DATATYPE, key);
}

/** The contents fields that hold values (protobufjs also sets empty arrays for absent repeated fields). */
function filled(contents: Record<string, unknown>, label: string): [ContentsField, unknown[]][] {
  const out: [ContentsField, unknown[]][] = [];
  for (const [key, v] of Object.entries(contents)) {
    if (!isField(key)) throw invalidTensor(`${label}: unknown contents field '${key.slice(0, 64)}', expected one of ${FIELDS}`);
    if (!Array.isArray(v)) throw invalidTensor(`${label}: contents.${key} must be an array, got ${describe(v)}`);
    if (v.length > 0) out.push([key, v]);
  }
  return out;
}

function isLong(v: unknown): v is protobuf.Long {
  return typeof v === "object" && v !== null && typeof (v as protobuf.Long).low === "number";
}

/**
 * 64-bit integers: protobufjs Longs (written word by word: exact for the whole range, no BigInt
 * per element), or JSON numbers and decimal strings (how proto3's JSON mapping writes int64),
 * which go through the one element encoder with its range checks and messages.
 */
function encode64(dt: "INT64" | "UINT64", values: readonly unknown[], label: string): Buffer {
  if (values.length > 0 && isLong(values[0])) {
    const buf = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => {
      if (!isLong(v)) throw invalidTensor(`${label}: element ${i} must be ${dt === "INT64" ? "an INT64" : "a UINT64"}, got ${describe(v)}`);
      buf.writeInt32LE(v.low, i * 8);
      buf.writeInt32LE(v.high, i * 8 + 4);
    });
    return buf;
  }
  const converted = values.map((v) => (typeof v === "string" && /^-?\d{1,20}$/.test(v) ? BigInt(v) : v));
  return encodeElements(dt, converted, label) as Buffer;
}

/**
 * Typed contents → internal tensor data, after checking that the one field used is the
 * datatype's and that it holds as many elements as the shape says. `contents` is a decoded
 * protobuf message (Buffers for BYTES, Longs for 64-bit) or the seed's JSON (strings, numbers).
 * @throws AnyServeError INVALID_TENSOR naming the tensor, the expected and the actual field or count
 */
export function contentsToData(dt: Datatype, shape: readonly number[], contents: unknown, label: string): Buffer | Buffer[] {
  const info = DATATYPE_INFO[dt];
  let values: unknown[] = [];
  if (contents !== undefined && contents !== null) {
    if (!isPlainObject(contents) && (typeof contents !== "object" || Array.isArray(contents))) {
      throw invalidTensor(`${label}: contents must be an object of ${FIELDS}, got ${describe(contents)}`);
    }
    rejectPrototypeKeys(contents, `${label} contents`);
    for (const [field, v] of filled(contents as Record<string, unknown>, label)) {
      if (field !== info.contents) {
        throw invalidTensor(
          info.contents === null
            ? `${label}: ${dt} has no typed contents field and must be sent in raw contents, got ${field}`
            : `${label}: ${dt} data must be in ${info.contents}, got ${field}`,
        );
      }
      values = v;
    }
  }
  if (values.length !== elementCount(shape)) throw countMismatch(label, dt, shape, values.length);
  if (dt === "INT64" || dt === "UINT64") return encode64(dt, values, label);
  return encodeElements(dt, values, label);
}

/** A seed-form tensor object (`contents`, no `data`) with its datatype and shape filled in when left out. */
export function withContentsDefaults(obj: Record<string, unknown>, role: TensorRole, index: number): Record<string, unknown> {
  if (obj.datatype !== undefined && obj.shape !== undefined) return obj;
  const label = tensorLabel(role, typeof obj.name === "string" && obj.name !== "" ? obj.name : index);
  const contents = obj.contents;
  if (!isPlainObject(contents)) throw invalidTensor(`${label}: contents must be an object of ${FIELDS}, got ${describe(contents)}`);
  const used = filled(contents, label);
  const out = { ...obj };
  if (out.datatype === undefined) {
    if (used.length !== 1) {
      throw invalidTensor(`${label}: has no datatype, and its contents fill ${used.length} fields (expected exactly one to infer it from)`);
    }
    out.datatype = FIELD_DATATYPE[used[0]![0]];
  }
  if (out.shape === undefined) out.shape = [used[0]?.[1].length ?? 0];
  return out;
}

/** An internal tensor as typed contents of JSON values (BYTES as UTF-8 strings). */
function tensorToContents(t: Tensor, role: TensorRole): Record<string, unknown> {
  const field = DATATYPE_INFO[t.datatype].contents;
  if (field === null) {
    throw invalidTensor(
      `${tensorLabel(role, t.name)}: ${t.datatype} has no contents field; call with OIP 'data' tensors or gRPC to receive it`,
    );
  }
  return { [field]: tensorToJsonData(t, role) };
}

/**
 * Encodes a response in the seed's JSON form: `{model_name, model_version, id, outputs:
 * [{name, datatype, shape, contents: {<field>: [...]}}]}`, strings where the seed had them.
 * @throws AnyServeError INVALID_TENSOR when an output cannot be written so (FP16/BF16, non-UTF-8 BYTES, int64 beyond 2^53)
 */
export function encodeContentsJsonResponse(res: InferResponse): EncodedBody {
  const outputs = res.outputs.map((t, i) => {
    checkTensor(t, "output", i);
    const out: Record<string, unknown> = { name: t.name, datatype: t.datatype, shape: t.shape };
    if (t.parameters !== undefined && Object.keys(t.parameters).length > 0) out.parameters = t.parameters;
    out.contents = tensorToContents(t, "output");
    return out;
  });
  const obj: Record<string, unknown> = { model_name: res.modelName, model_version: res.modelVersion ?? "", id: res.id ?? "" };
  if (res.parameters !== undefined && Object.keys(res.parameters).length > 0) obj.parameters = res.parameters;
  obj.outputs = outputs;
  return assembleBody(JSON.stringify(obj), []);
}
