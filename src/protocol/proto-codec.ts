/**
 * The protobuf wire format (`inference.ModelInferRequest` / `ModelInferResponse`), via protobufjs.
 *
 * Decoding accepts either `raw_*_contents` (one entry per tensor, in order) or typed `contents`
 * per tensor, never both. Encoding always writes raw contents: lossless, no per-element work, and
 * the only way FP16/BF16 can travel. Raw tensor bytes are slices of the body, not copies.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import type protobuf from "protobufjs";
import { AnyServeError } from "../errors.js";
import { decodeBinaryTensorData, encodeBinaryTensorData } from "./binary-ext.js";
import { DATATYPES_LIST, isDatatype } from "./datatypes.js";
import { MAX_ID_LENGTH } from "./json-codec.js";
import { checkShape, checkTensor, invalidTensor, tensorLabel, type TensorRole } from "./tensor.js";
import { contentsToData } from "./contents.js";
import type { InferRequest, InferResponse, RequestedOutput, Tensor } from "./types.js";

import { fromProtoParams, int64String, safeNumber, toProtoParams, type Int64, type PParams } from "./proto-params.js";
import { walkFields } from "./proto-scan.js";

export { readModelName } from "./proto-scan.js";

const PROTO_FILE = join("proto", "grpc_predict_v2.proto");

/**
 * Absolute path of `proto/grpc_predict_v2.proto`: walks up from this module to the package root,
 * so it resolves the same from `src/` (tsx) and from `dist/src/` (compiled).
 */
export function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, PROTO_FILE))) return join(dir, PROTO_FILE);
    const parent = dirname(dir);
    if (parent === dir) throw new AnyServeError("INTERNAL", `cannot find ${PROTO_FILE} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

interface ProtoTypes {
  root: protobuf.Root;
  request: protobuf.Type;
  response: protobuf.Type;
  stream: protobuf.Type;
}
let cached: ProtoTypes | undefined;

/**
 * The loaded protobufjs root and message types (loaded once, on first use; field names as in the
 * .proto). protobufjs itself is required here, on first use, not imported: a worker whose callers
 * all speak JSON never loads it (it is CommonJS, so a synchronous `require` serves the synchronous
 * codec).
 */
export function protoTypes(): ProtoTypes {
  if (cached === undefined) {
    const { Root } = createRequire(import.meta.url)("protobufjs") as typeof protobuf;
    const root = new Root().loadSync(protoPath(), { keepCase: true });
    cached = {
      root,
      request: root.lookupType("inference.ModelInferRequest"),
      response: root.lookupType("inference.ModelInferResponse"),
      stream: root.lookupType("inference.ModelStreamInferResponse"),
    };
  }
  return cached;
}

// ── decoded message shapes (protobufjs with keepCase; int64 fields arrive as Long or number) ──
type PContents = Partial<Record<string, unknown[]>>;
interface PTensor {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters?: PParams;
  contents?: PContents | null;
}
interface PMessage {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: PParams;
  inputs?: PTensor[];
  outputs?: PTensor[];
  raw_input_contents?: Buffer[];
  raw_output_contents?: Buffer[];
}

function decodeMessage<T>(type: protobuf.Type, body: Buffer, what: string): T {
  walkFields(body, undefined, type.name); // strict top-level framing first (see walkFields)
  try {
    return type.decode(body) as unknown as T;
  } catch (err) {
    // protobufjs throws plain Errors/RangeErrors for bad wire data; none of them may escape as a 500.
    throw new AnyServeError("INVALID_PROTOBUF", `${what} is not a valid ${type.name}: ${(err as Error).message}`);
  }
}

function hasContents(c: PContents | null | undefined): boolean {
  if (!c) return false;
  return Object.values(c).some((v) => Array.isArray(v) && v.length > 0);
}

function readTensors(m: PMessage, role: TensorRole): Tensor[] {
  const list = (role === "input" ? m.inputs : m.outputs) ?? [];
  const raw = (role === "input" ? m.raw_input_contents : m.raw_output_contents) ?? [];
  const rawField = role === "input" ? "raw_input_contents" : "raw_output_contents";
  if (role === "input" && list.length === 0)
    throw new AnyServeError("INVALID_REQUEST", "request field 'inputs' must be a non-empty array of tensors");
  if (raw.length > 0 && raw.length !== list.length) {
    throw invalidTensor(`${rawField} has ${raw.length} entries for ${list.length} ${role}s; it needs one per ${role}`);
  }
  const seen = new Set<string>();
  return list.map((p, i): Tensor => {
    if (p.name === "") throw invalidTensor(`${tensorLabel(role, i)}: name must be a non-empty string`);
    const label = tensorLabel(role, p.name);
    if (seen.has(p.name)) throw invalidTensor(`${label} appears more than once`);
    seen.add(p.name);
    if (!isDatatype(p.datatype)) throw invalidTensor(`${label}: unknown datatype "${p.datatype}", expected one of ${DATATYPES_LIST}`);
    const shape = checkShape(
      p.shape.map((d) => safeNumber(d) ?? int64String(d)),
      label,
    );
    let data: Buffer | Buffer[];
    if (raw.length > 0) {
      if (hasContents(p.contents)) throw invalidTensor(`${label}: has both contents and ${rawField}; send one or the other`);
      data = decodeBinaryTensorData(p.datatype, shape, raw[i]!, label);
    } else {
      data = contentsToData(p.datatype, shape, p.contents, label);
    }
    const t: Tensor = { name: p.name, datatype: p.datatype, shape, data };
    const params = fromProtoParams(p.parameters, label);
    if (params !== undefined) t.parameters = params;
    return t;
  });
}

function readRequestedOutputs(list: PTensor[] | undefined): RequestedOutput[] | undefined {
  if (list === undefined || list.length === 0) return undefined;
  return list.map((o, i) => {
    if (o.name === "") throw new AnyServeError("INVALID_REQUEST", `requested output #${i}: name must be a non-empty string`);
    const params = fromProtoParams(o.parameters, `requested output '${o.name}'`);
    return params === undefined ? { name: o.name } : { name: o.name, parameters: params };
  });
}

/**
 * Decodes a serialized `ModelInferRequest`. Empty proto3 strings (id, model name/version) become
 * `undefined`.
 * @throws AnyServeError INVALID_PROTOBUF (bad bytes), INVALID_REQUEST, INVALID_PARAMETER, INVALID_TENSOR
 */
export function decodeProtoRequest(body: Buffer): InferRequest {
  const m = decodeMessage<PMessage>(protoTypes().request, body, "request");
  if (m.id.length > MAX_ID_LENGTH) {
    throw new AnyServeError("INVALID_REQUEST", `request field 'id' must be at most ${MAX_ID_LENGTH} characters, got ${m.id.length}`);
  }
  const req: InferRequest = { inputs: readTensors(m, "input") };
  if (m.id !== "") req.id = m.id;
  if (m.model_name !== "") req.modelName = m.model_name;
  if (m.model_version !== "") req.modelVersion = m.model_version;
  const params = fromProtoParams(m.parameters, "request");
  if (params !== undefined) req.parameters = params;
  const outputs = readRequestedOutputs(m.outputs);
  if (outputs !== undefined) req.outputs = outputs;
  return req;
}

/** Decodes a serialized `ModelInferResponse` (client side). */
export function decodeProtoResponse(body: Buffer): InferResponse {
  return responseFromMessage(decodeMessage<PMessage>(protoTypes().response, body, "response"));
}

function responseFromMessage(m: PMessage): InferResponse {
  const res: InferResponse = { modelName: m.model_name, outputs: readTensors(m, "output") };
  if (m.model_version !== "") res.modelVersion = m.model_version;
  if (m.id !== "") res.id = m.id;
  const params = fromProtoParams(m.parameters, "response");
  if (params !== undefined) res.parameters = params;
  return res;
}

/** protobufjs hands back a Buffer in Node; wrap (never copy) if it is a bare Uint8Array. */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function tensorMessage(t: Tensor): Record<string, unknown> {
  const out: Record<string, unknown> = { name: t.name, datatype: t.datatype, shape: t.shape };
  const params = toProtoParams(t.parameters);
  if (params !== undefined) out.parameters = params;
  return out;
}

/** A protobuf varint (lengths and tags here are below 2^53). */
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

/**
 * Appends repeated `bytes` field `field` after an encoded message head. Protobuf fields may come
 * in any order, and doing it here costs one copy of the tensor bytes (protobufjs's writer is
 * several times slower on megabytes of raw data).
 */
function appendBytesFields(head: Uint8Array, field: number, chunks: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [asBuffer(head)];
  const tag = varint(field * 8 + 2);
  for (const c of chunks) parts.push(tag, varint(c.length), c);
  return Buffer.concat(parts);
}

function responseHead(res: InferResponse): { head: Record<string, unknown>; outputs: Tensor[] } {
  const outputs = res.outputs.map((t, i) => checkTensor(t, "output", i));
  const head: Record<string, unknown> = { model_name: res.modelName, outputs: outputs.map(tensorMessage) };
  if (res.modelVersion !== undefined) head.model_version = res.modelVersion;
  if (res.id !== undefined) head.id = res.id;
  const params = toProtoParams(res.parameters);
  if (params !== undefined) head.parameters = params;
  return { head, outputs };
}

/** Encodes a response as a `ModelInferResponse`, outputs always in `raw_output_contents` (field 6). */
export function encodeProtoResponse(res: InferResponse): Buffer {
  const { head, outputs } = responseHead(res);
  return appendBytesFields(protoTypes().response.encode(head).finish(), 6, outputs.map(encodeBinaryTensorData));
}

/** Encodes a request as a `ModelInferRequest`, inputs always in `raw_input_contents` (field 7; client side). */
export function encodeProtoRequest(req: InferRequest): Buffer {
  const inputs = req.inputs.map((t, i) => checkTensor(t, "input", i));
  const msg: Record<string, unknown> = { inputs: inputs.map(tensorMessage) };
  if (req.modelName !== undefined) msg.model_name = req.modelName;
  if (req.modelVersion !== undefined) msg.model_version = req.modelVersion;
  if (req.id !== undefined) msg.id = req.id;
  const params = toProtoParams(req.parameters);
  if (params !== undefined) msg.parameters = params;
  if (req.outputs !== undefined) {
    msg.outputs = req.outputs.map((o) => {
      const p = toProtoParams(o.parameters);
      return p === undefined ? { name: o.name } : { name: o.name, parameters: p };
    });
  }
  return appendBytesFields(protoTypes().request.encode(msg).finish(), 7, inputs.map(encodeBinaryTensorData));
}

/** One message of Triton's `ModelStreamInfer`: an error or a response. */
export interface StreamMessage {
  errorMessage?: string;
  response?: InferResponse;
}

/** Encodes a `ModelStreamInferResponse` (the response goes in field 2, `infer_response`). */
export function encodeStreamResponse(m: StreamMessage): Buffer {
  const msg: Record<string, unknown> = {};
  if (m.errorMessage !== undefined) msg.error_message = m.errorMessage;
  const head = protoTypes().stream.encode(msg).finish();
  return m.response === undefined ? asBuffer(head) : appendBytesFields(head, 2, [encodeProtoResponse(m.response)]);
}

/** Decodes a `ModelStreamInferResponse` (client side). */
export function decodeStreamResponse(body: Buffer): StreamMessage {
  const m = decodeMessage<{ error_message: string; infer_response?: PMessage | null }>(protoTypes().stream, body, "stream response");
  const out: StreamMessage = {};
  if (m.error_message !== "") out.errorMessage = m.error_message;
  if (m.infer_response) out.response = responseFromMessage(m.infer_response);
  return out;
}
