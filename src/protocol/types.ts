/**
 * Open Inference Protocol v2 (KServe v2) as anyserve holds it in memory.
 *
 * One internal form serves every wire format: fixed-size tensors are kept as their row-major,
 * little-endian bytes (exactly what the binary tensor extension and gRPC `raw_*_contents` carry),
 * BYTES tensors as one Buffer per element. JSON `data` is converted to and from this form once,
 * at the edge that speaks JSON.
 */

/** The 13 datatypes of the spec plus BF16, in the spec's order. */
export const DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
  "BF16",
] as const;

export type Datatype = (typeof DATATYPES)[number];

export type ParamValue = string | number | boolean;

/** Request/tensor parameters: `{key: string | number | boolean}` as the spec allows. */
export type Parameters = Record<string, ParamValue>;

/** A tensor inside anyserve. */
export interface Tensor {
  name: string;
  datatype: Datatype;
  /** Dimensions; every one a non-negative safe integer. */
  shape: number[];
  parameters?: Parameters;
  /**
   * Fixed-size datatypes: row-major little-endian bytes, `elements × elementSize` long
   * (BOOL is one byte per element, 0 or 1). BYTES: one Buffer per element.
   */
  data: Buffer | Buffer[];
}

export interface RequestedOutput {
  name: string;
  parameters?: Parameters;
}

/** A decoded inference request (`ModelInferRequest`). */
export interface InferRequest {
  id?: string;
  modelName?: string;
  modelVersion?: string;
  parameters?: Parameters;
  inputs: Tensor[];
  outputs?: RequestedOutput[];
  /**
   * Set when the JSON request's tensors came in the seed's typed `contents` form instead of OIP's
   * `data` (see protocol/contents.ts): its answer is written in that form too.
   */
  jsonForm?: "contents";
}

/** A decoded inference response (`ModelInferResponse`). */
export interface InferResponse {
  modelName: string;
  modelVersion?: string;
  id?: string;
  parameters?: Parameters;
  outputs: Tensor[];
}

/** Wire formats a body can be in. `json` covers the binary tensor extension too. */
export type WireFormat = "json" | "protobuf";

/** An encoded body and what a receiver needs to decode it. */
export interface EncodedBody {
  body: Buffer;
  contentType: string;
  /** Set when the body uses the binary tensor extension: the byte length of the JSON part. */
  headerLength?: number;
}

export const CONTENT_TYPE_JSON = "application/json";
export const CONTENT_TYPE_BINARY = "application/octet-stream";
export const CONTENT_TYPE_PROTOBUF = "application/x-protobuf";
export const HEADER_INFERENCE_LENGTH = "inference-header-content-length";
