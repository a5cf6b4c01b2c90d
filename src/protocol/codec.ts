/**
 * The façade the rest of anyserve uses to read and write inference bodies. It picks the wire
 * format from the content type; the format modules know the details.
 *
 * | Content-Type | format |
 * |---|---|
 * | missing, `application/json`, `application/octet-stream` (binary tensor extension) | json |
 * | `application/x-protobuf`, `application/protobuf`, `application/grpc+proto` | protobuf |
 * | anything else | 415 UNSUPPORTED_MEDIA_TYPE |
 */
import { binaryOutputChoice } from "./binary-ext.js";
import { encodeContentsJsonResponse } from "./contents.js";
import { decodeJsonRequest, decodeJsonResponse, encodeJsonRequest, encodeJsonResponse } from "./json-codec.js";
import { decodeProtoRequest, decodeProtoResponse, encodeProtoRequest, encodeProtoResponse } from "./proto-codec.js";
import { formatOfContentType } from "./media-type.js";
import { CONTENT_TYPE_PROTOBUF, type EncodedBody, type InferRequest, type InferResponse, type WireFormat } from "./types.js";

/** Options for decoding a body: its content type and, for the binary extension, the JSON length. */
export interface DecodeOptions {
  contentType?: string | undefined;
  headerLength?: number | undefined;
}

/**
 * Decodes an inference request body: JSON (with the binary tensor extension when `headerLength`
 * is set) or protobuf `ModelInferRequest`, by content type.
 */
export function decodeRequest(body: Buffer, opts: DecodeOptions): InferRequest {
  return formatOfContentType(opts.contentType) === "protobuf" ? decodeProtoRequest(body) : decodeJsonRequest(body, opts.headerLength);
}

/**
 * Encodes a response. A JSON request in the seed's `contents` form is answered in that form. For JSON, outputs the request asked for in binary (`binary_data_output`, or
 * `binary_data` on a requested output) go in the binary part; check `headerLength` on the result.
 */
export function encodeResponse(res: InferResponse, format: WireFormat, req?: InferRequest): EncodedBody {
  if (format === "protobuf") return { body: encodeProtoResponse(res), contentType: CONTENT_TYPE_PROTOBUF };
  if (req?.jsonForm === "contents") return encodeContentsJsonResponse(res);
  return encodeJsonResponse(res, binaryOutputChoice(req));
}

/** Decodes a response body (client side). */
export function decodeResponse(body: Buffer, opts: DecodeOptions): InferResponse {
  return formatOfContentType(opts.contentType) === "protobuf" ? decodeProtoResponse(body) : decodeJsonResponse(body, opts.headerLength);
}

/**
 * Encodes a request (client side). `binary: true` with JSON sends inputs with the binary tensor
 * extension and asks for binary outputs; protobuf always uses raw contents.
 */
export function encodeRequest(req: InferRequest, format: WireFormat, opts: { binary?: boolean } = {}): EncodedBody {
  if (format === "protobuf") return { body: encodeProtoRequest(req), contentType: CONTENT_TYPE_PROTOBUF };
  return encodeJsonRequest(req, opts);
}
