/**
 * Plain JS values ↔ whole requests and responses. Re-exported from `values.ts`, which documents
 * the rules with examples.
 */
import { AnyServeError } from "../errors.js";
import { describe, isPlainObject, readParameters } from "./json-util.js";
import { checkTensor, invalidTensor, jsonDataToTensorData, readJsonTensorHeader, type TensorRole } from "./tensor.js";
import type { Datatype, InferRequest, InferResponse, Parameters, RequestedOutput, Tensor } from "./types.js";
import { BLOB_CONTENT_TYPE, JSON_CONTENT_TYPE, tensorToValues, tryInferTensor, valueToTensor } from "./value-convert.js";

/** An OIP tensor object: `name`, `datatype` and `shape` present (data inline, or internal Buffers). */
function isTensorObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.name === "string" && typeof o.datatype === "string" && Array.isArray(o.shape);
}

/** A tensor object in either form: internal (Buffer / Buffer[] data) or JSON (`data` as values). */
function tensorFromObject(o: Record<string, unknown>, role: TensorRole, index: number): Tensor {
  const data = o.data;
  const internal = Buffer.isBuffer(data) || (Array.isArray(data) && data.length > 0 && data.every((d) => Buffer.isBuffer(d)));
  if (internal) {
    const t: Tensor = {
      name: o.name as string,
      datatype: o.datatype as Datatype,
      shape: o.shape as number[],
      data: data as Buffer | Buffer[],
    };
    const params = readParameters(o.parameters, `${role} '${t.name}'`);
    if (params !== undefined) t.parameters = params;
    return checkTensor(t, role, index);
  }
  const h = readJsonTensorHeader(o, role, index);
  if (h.binaryDataSize !== undefined) throw invalidTensor(`${h.label}: binary_data_size is a wire parameter; give the data inline`);
  const t: Tensor = { name: h.name, datatype: h.datatype, shape: h.shape, data: jsonDataToTensorData(h, role) };
  if (h.parameters !== undefined) t.parameters = h.parameters;
  return t;
}

function tensorsFromObjects(list: readonly unknown[], role: TensorRole): Tensor[] {
  const seen = new Set<string>();
  return list.map((o, i) => {
    const t = tensorFromObject(o as Record<string, unknown>, role, i);
    if (seen.has(t.name)) throw invalidTensor(`${role} '${t.name}' appears more than once`);
    seen.add(t.name);
    return t;
  });
}

function optionalStringOf(r: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const k of keys) if (typeof r[k] === "string") return r[k] as string;
  return undefined;
}

/**
 * Turns whatever a handler returned into a response:
 * - a full OIP response (an object whose `outputs` items all have `name`, `datatype`, `shape`)
 *   passes as is: each output may be in JSON form (`data` as values, validated and converted) or
 *   internal form (`data` a Buffer, or Buffer[] for BYTES); `model_name`/`model_version`/
 *   `parameters` are taken from it when present;
 * - a plain object whose values are all tensor-able (see {@link valueToTensor}; not objects,
 *   `null` or ragged arrays) becomes one output per key;
 * - any other value becomes one output named `output` (JSON text when not tensor-able).
 *
 * The request's `id` (in `base`) wins over one in the result: the protocol echoes the request's id.
 *
 * @example
 * ```ts
 * handlerResultToResponse({ label: "cat", score: 0.9 }, { modelName: "m" });
 * // outputs: label BYTES [1], score FP64 [1]
 * handlerResultToResponse([1, 2, 3], { modelName: "m", id: "r1" });
 * // outputs: output FP64 [3]; id "r1"
 * ```
 */
export function handlerResultToResponse(result: unknown, base: { modelName: string; id?: string }): InferResponse {
  let res: InferResponse;
  if (
    result !== null &&
    typeof result === "object" &&
    !Array.isArray(result) &&
    Array.isArray((result as { outputs?: unknown }).outputs) &&
    (result as { outputs: unknown[] }).outputs.every(isTensorObject)
  ) {
    const r = result as Record<string, unknown>;
    res = {
      modelName: optionalStringOf(r, "model_name", "modelName") ?? base.modelName,
      outputs: tensorsFromObjects(r.outputs as unknown[], "output"),
    };
    const version = optionalStringOf(r, "model_version", "modelVersion");
    if (version !== undefined) res.modelVersion = version;
    const id = base.id ?? optionalStringOf(r, "id");
    if (id !== undefined) res.id = id;
    const params = readParameters(r.parameters, "response");
    if (params !== undefined) res.parameters = params;
    return res;
  }
  let outputs: Tensor[] | undefined;
  if (isPlainObject(result)) {
    const entries = Object.entries(result);
    const tensors = entries.map(([k, v]) => (k === "" ? undefined : tryInferTensor(k, v)));
    if (entries.length > 0 && tensors.every((t) => t !== undefined)) outputs = tensors as Tensor[];
  }
  res = { modelName: base.modelName, outputs: outputs ?? [valueToTensor("output", result)] };
  if (base.id !== undefined) res.id = base.id;
  return res;
}

function parseJsonElement(b: Buffer, name: string): unknown {
  try {
    return JSON.parse(b.toString("utf8")) as unknown;
  } catch (err) {
    throw new AnyServeError(
      "INVALID_TENSOR",
      `output '${name}' says content_type application/json but is not JSON: ${(err as Error).message}`,
    );
  }
}

/** The value of one output tensor, with the unwrapping rules of {@link responseToValue}. */
export function outputToValue(t: Tensor): unknown {
  const scalar = t.shape.length === 0 || (t.shape.length === 1 && t.shape[0] === 1);
  const contentType = t.parameters?.content_type;
  let values: ArrayLike<unknown>;
  if (Array.isArray(t.data) && contentType === JSON_CONTENT_TYPE) values = t.data.map((b) => parseJsonElement(b, t.name));
  else if (Array.isArray(t.data) && contentType === BLOB_CONTENT_TYPE) values = t.data;
  else values = tensorToValues(t);
  return scalar && values.length === 1 ? values[0] : values;
}

/**
 * The client-side inverse of {@link handlerResultToResponse}.
 *
 * - A response with exactly one output, named `output`, gives that output's value.
 * - Otherwise the result is an object keyed by output name (also for a single differently named
 *   output, and `{}` for none).
 *
 * An output's value: BYTES marked `content_type: application/json` is parsed; BYTES marked
 * `application/octet-stream` gives Buffers; otherwise {@link tensorToValues} (typed array,
 * `boolean[]`, `string[]`, always flat). **Unwrapping:** when the shape is `[1]` (or `[]`) the single
 * element is returned instead of a one-element array — a string, number, boolean, bigint (64-bit
 * types), Buffer or parsed JSON value. So `handlerResultToResponse(0.5)` comes back as `0.5`, but
 * `[0.5]` comes back as `0.5` too, and `[[1,2],[3,4]]` as a flat `Float64Array(4)`.
 *
 * @example
 * ```ts
 * responseToValue(res);             // "cat", or { label: "cat", score: 0.9 }
 * ```
 */
export function responseToValue(res: InferResponse): unknown {
  const only = res.outputs.length === 1 ? res.outputs[0]! : undefined;
  if (only !== undefined && only.name === "output") return outputToValue(only);
  const out: Record<string, unknown> = {};
  for (const t of res.outputs) {
    // defineProperty, not assignment: an output named "__proto__" must stay a plain key.
    Object.defineProperty(out, t.name, { value: outputToValue(t), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Options for {@link inputsToRequest}. */
export interface InputsOptions {
  id?: string;
  modelName?: string;
  modelVersion?: string;
  parameters?: Parameters;
  /** Outputs to request, by name or in full. */
  outputs?: ReadonlyArray<string | RequestedOutput>;
  /** Explicit datatypes per input name (the single-value form uses the name `input`). */
  datatypes?: Readonly<Record<string, Datatype>>;
}

/**
 * Builds a request from client values:
 * - an array of OIP tensor objects (`{name, datatype, shape, data}`, JSON or internal form) is
 *   used as is (validated);
 * - a non-empty plain object `{name: value}` gives one input per key via {@link valueToTensor}
 *   (with `opts.datatypes[name]` when given);
 * - any other value gives one input named `input`.
 *
 * @example
 * ```ts
 * inputsToRequest({ x: new Float32Array([1, 2]), prompt: "hi" });  // inputs x FP32 [2], prompt BYTES [1]
 * inputsToRequest([1, 2, 3], { datatypes: { input: "INT32" } });    // input INT32 [3]
 * inputsToRequest([{ name: "x", datatype: "FP32", shape: [2], data: [1, 2] }]);
 * ```
 */
export function inputsToRequest(inputs: unknown, opts: InputsOptions = {}): InferRequest {
  const dtype = (name: string): Datatype | undefined =>
    opts.datatypes !== undefined && Object.hasOwn(opts.datatypes, name) ? opts.datatypes[name] : undefined;
  let tensors: Tensor[];
  if (Array.isArray(inputs) && inputs.length > 0 && inputs.every(isTensorObject)) {
    tensors = tensorsFromObjects(inputs, "input");
  } else if (isPlainObject(inputs) && Object.keys(inputs).length > 0) {
    tensors = Object.entries(inputs).map(([k, v]) => valueToTensor(k, v, dtype(k)));
  } else {
    tensors = [valueToTensor("input", inputs, dtype("input"))];
  }
  const req: InferRequest = { inputs: tensors };
  if (opts.id !== undefined) req.id = opts.id;
  if (opts.modelName !== undefined) req.modelName = opts.modelName;
  if (opts.modelVersion !== undefined) req.modelVersion = opts.modelVersion;
  if (opts.parameters !== undefined) req.parameters = readParameters(opts.parameters, "request")!;
  if (opts.outputs !== undefined) {
    req.outputs = opts.outputs.map((o) => (typeof o === "string" ? { name: o } : o));
    for (const o of req.outputs) {
      if (typeof o.name !== "string" || o.name === "")
        throw new AnyServeError("INVALID_REQUEST", `requested output name must be a non-empty string, got ${describe(o.name)}`);
    }
  }
  return req;
}
