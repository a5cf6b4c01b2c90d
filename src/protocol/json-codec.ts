/**
 * The REST/JSON wire format of OIP v2, with Triton's binary tensor data extension.
 *
 * Requests: `{id?, model_name?, model_version?, parameters?, inputs: [...], outputs?: [...]}`;
 * a tensor carries `data`, binary data, or the seed's typed `contents` (contents.ts).
 * Responses: `{model_name, model_version?, id?, parameters?, outputs: [...]}`.
 * Every object walked (top level, parameters, each tensor, each requested output) is checked for
 * prototype keys; unknown top-level keys are ignored, as other servers do.
 */
import { AnyServeError } from "../errors.js";
import {
  BinaryCursor,
  assembleBody,
  decodeBinaryTensorData,
  encodeBinaryTensorData,
  splitBinaryBody,
  wantsBinary,
  type BinaryOutputChoice,
} from "./binary-ext.js";
import { contentsToData, withContentsDefaults } from "./contents.js";
import { describe, isPlainObject, optionalString, parseJson, readParameters, rejectPrototypeKeys } from "./json-util.js";
import { checkTensor, invalidTensor, jsonDataToTensorData, readJsonTensorHeader, tensorToJsonData, type TensorRole } from "./tensor.js";
import type { EncodedBody, InferRequest, InferResponse, Parameters, RequestedOutput, Tensor } from "./types.js";

/** Longest accepted request `id`; an id is echoed in responses and logs, so it stays small. */
export const MAX_ID_LENGTH = 256;

function splitBody(body: Buffer, headerLength: number | undefined): { json: Buffer; cursor?: BinaryCursor } {
  if (headerLength === undefined) return { json: body };
  const { json, binary } = splitBinaryBody(body, headerLength);
  return { json, cursor: new BinaryCursor(binary) };
}

function parseTop(json: Buffer, what: "request" | "response"): Record<string, unknown> {
  const obj = parseJson(json, what);
  if (!isPlainObject(obj)) throw new AnyServeError("INVALID_JSON", `${what} body must be a JSON object, got ${describe(obj)}`);
  rejectPrototypeKeys(obj, what);
  return obj;
}

/**
 * Reads `inputs` (or `outputs` of a response): tensors with inline `data`, binary data, or the
 * seed's typed `contents` (see contents.ts); names unique. `forms.contents` is set when any
 * tensor came in the seed's form.
 */
function readTensors(
  list: unknown,
  role: TensorRole,
  what: string,
  cursor: BinaryCursor | undefined,
  forms?: { contents: boolean },
): Tensor[] {
  const field = `${role}s`;
  if (!Array.isArray(list) || (role === "input" && list.length === 0)) {
    throw new AnyServeError(
      "INVALID_REQUEST",
      `${what} field '${field}' must be a ${role === "input" ? "non-empty " : ""}array of tensors, got ${describe(list)}`,
    );
  }
  const seen = new Set<string>();
  const tensors = list.map((item, i): Tensor => {
    const seed = isPlainObject(item) && item.data === undefined && item.contents !== undefined;
    const h = readJsonTensorHeader(seed ? withContentsDefaults(item, role, i) : item, role, i);
    if (seen.has(h.name)) throw invalidTensor(`${h.label} appears more than once in '${field}'`);
    seen.add(h.name);
    let data: Buffer | Buffer[];
    if (h.binaryDataSize !== undefined) {
      if (h.data !== undefined) throw invalidTensor(`${h.label}: has both 'data' and parameter binary_data_size`);
      if (cursor === undefined) {
        throw invalidTensor(
          `${h.label}: has binary_data_size but the body has no binary part (Inference-Header-Content-Length is missing)`,
        );
      }
      data = decodeBinaryTensorData(h.datatype, h.shape, cursor.take(h.binaryDataSize, h.label), h.label);
    } else if (seed) {
      data = contentsToData(h.datatype, h.shape, (item as Record<string, unknown>).contents, h.label);
      if (forms) forms.contents = true;
    } else if (h.data === undefined) {
      throw invalidTensor(`${h.label}: has no 'data' (nor the seed's 'contents') and no parameter binary_data_size`);
    } else {
      data = jsonDataToTensorData(h, role);
    }
    const t: Tensor = { name: h.name, datatype: h.datatype, shape: h.shape, data };
    if (h.parameters !== undefined) t.parameters = h.parameters;
    return t;
  });
  cursor?.finish();
  return tensors;
}

function readRequestedOutputs(list: unknown): RequestedOutput[] | undefined {
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) throw new AnyServeError("INVALID_REQUEST", `request field 'outputs' must be an array, got ${describe(list)}`);
  const seen = new Set<string>();
  return list.map((item, i): RequestedOutput => {
    const where = `requested output #${i}`;
    if (!isPlainObject(item)) throw new AnyServeError("INVALID_REQUEST", `${where} must be an object, got ${describe(item)}`);
    rejectPrototypeKeys(item, where);
    const { name } = item;
    if (typeof name !== "string" || name === "") {
      throw new AnyServeError("INVALID_REQUEST", `${where}: name must be a non-empty string, got ${describe(name)}`);
    }
    if (seen.has(name)) throw new AnyServeError("INVALID_REQUEST", `requested output '${name}' appears more than once`);
    seen.add(name);
    const params = readParameters(item.parameters, `requested output '${name}'`);
    return params === undefined ? { name } : { name, parameters: params };
  });
}

/**
 * Decodes a JSON inference request. With `headerLength` the body uses the binary tensor
 * extension: the first `headerLength` bytes are JSON, the rest binary tensor data.
 * @throws AnyServeError INVALID_JSON, INVALID_HEADER, INVALID_REQUEST, INVALID_PARAMETER, INVALID_TENSOR
 */
export function decodeJsonRequest(body: Buffer, headerLength?: number): InferRequest {
  const { json, cursor } = splitBody(body, headerLength);
  const obj = parseTop(json, "request");
  const id = optionalString(obj, "id", "request", "INVALID_REQUEST", MAX_ID_LENGTH);
  const modelName = optionalString(obj, "model_name", "request");
  const modelVersion = optionalString(obj, "model_version", "request");
  const parameters = readParameters(obj.parameters, "request");
  const forms = { contents: false };
  const inputs = readTensors(obj.inputs, "input", "request", cursor, forms);
  const outputs = readRequestedOutputs(obj.outputs);
  const req: InferRequest = { inputs };
  if (forms.contents) req.jsonForm = "contents";
  if (id !== undefined) req.id = id;
  if (modelName !== undefined) req.modelName = modelName;
  if (modelVersion !== undefined) req.modelVersion = modelVersion;
  if (parameters !== undefined) req.parameters = parameters;
  if (outputs !== undefined) req.outputs = outputs;
  return req;
}

/**
 * Decodes a JSON inference response (client side). A `null` in float data decodes as NaN, since
 * that is how NaN/Infinity come out of JSON encoders.
 */
export function decodeJsonResponse(body: Buffer, headerLength?: number): InferResponse {
  const { json, cursor } = splitBody(body, headerLength);
  const obj = parseTop(json, "response");
  const modelName = optionalString(obj, "model_name", "response") ?? "";
  const modelVersion = optionalString(obj, "model_version", "response");
  const id = optionalString(obj, "id", "response");
  const parameters = readParameters(obj.parameters, "response");
  const res: InferResponse = { modelName, outputs: readTensors(obj.outputs, "output", "response", cursor) };
  if (modelVersion !== undefined) res.modelVersion = modelVersion;
  if (id !== undefined) res.id = id;
  if (parameters !== undefined) res.parameters = parameters;
  return res;
}

/** One tensor as JSON, or as a binary part (pushed to `parts`) with `binary_data_size` set. */
function tensorJson(t: Tensor, role: TensorRole, binary: boolean, parts: Buffer[]): Record<string, unknown> {
  const out: Record<string, unknown> = { name: t.name, datatype: t.datatype, shape: t.shape };
  if (binary) {
    const bytes = encodeBinaryTensorData(t);
    parts.push(bytes);
    out.parameters = { ...t.parameters, binary_data_size: bytes.length };
  } else {
    if (t.parameters !== undefined && Object.keys(t.parameters).length > 0) out.parameters = t.parameters;
    out.data = tensorToJsonData(t, role);
  }
  return out;
}

function nonEmpty(p: Parameters | undefined): p is Parameters {
  return p !== undefined && Object.keys(p).length > 0;
}

/**
 * Encodes a response as JSON; outputs chosen by `binaryOutputs` go in the binary part (then the
 * body's content type is `application/octet-stream` and `headerLength` is set).
 * @throws AnyServeError INVALID_TENSOR when an output is malformed or JSON cannot carry a value
 */
export function encodeJsonResponse(res: InferResponse, binaryOutputs?: BinaryOutputChoice): EncodedBody {
  const parts: Buffer[] = [];
  const outputs = res.outputs.map((t, i) => tensorJson(checkTensor(t, "output", i), "output", wantsBinary(binaryOutputs, t.name), parts));
  const obj: Record<string, unknown> = { model_name: res.modelName };
  if (res.modelVersion !== undefined && res.modelVersion !== "") obj.model_version = res.modelVersion;
  if (res.id !== undefined) obj.id = res.id;
  if (nonEmpty(res.parameters)) obj.parameters = res.parameters;
  obj.outputs = outputs;
  return assembleBody(JSON.stringify(obj), parts);
}

/** Options for {@link encodeJsonRequest}. */
export interface JsonRequestOptions {
  /** Send every input in the binary part (lossless, fast). Default false. */
  binary?: boolean;
  /**
   * Ask for binary outputs with request parameter `binary_data_output: true`, unless the request
   * already sets it. Defaults to `binary`.
   */
  binaryOutputs?: boolean;
}

/** Encodes a request as JSON, optionally with binary inputs (client side). */
export function encodeJsonRequest(req: InferRequest, opts: JsonRequestOptions = {}): EncodedBody {
  const binary = opts.binary ?? false;
  const parts: Buffer[] = [];
  const inputs = req.inputs.map((t, i) => tensorJson(checkTensor(t, "input", i), "input", binary, parts));
  const obj: Record<string, unknown> = {};
  if (req.id !== undefined) obj.id = req.id;
  if (req.modelName !== undefined) obj.model_name = req.modelName;
  if (req.modelVersion !== undefined) obj.model_version = req.modelVersion;
  let params = req.parameters;
  if ((opts.binaryOutputs ?? binary) && params?.binary_data_output === undefined) {
    params = { ...params, binary_data_output: true };
  }
  if (nonEmpty(params)) obj.parameters = params;
  obj.inputs = inputs;
  if (req.outputs !== undefined) {
    obj.outputs = req.outputs.map((o) => (nonEmpty(o.parameters) ? { name: o.name, parameters: o.parameters } : { name: o.name }));
  }
  return assembleBody(JSON.stringify(obj), parts);
}
