/**
 * Which wire format a Content-Type names. Shared by the REST front (which only forwards bodies
 * and must not load the codecs) and the codec (which decodes them).
 */
import { AnyServeError } from "../errors.js";
import type { WireFormat } from "./types.js";

const FORMATS: ReadonlyMap<string, WireFormat> = new Map<string, WireFormat>([
  ["application/json", "json"],
  ["application/octet-stream", "json"],
  ["application/x-protobuf", "protobuf"],
  ["application/protobuf", "protobuf"],
  ["application/grpc+proto", "protobuf"],
]);

/**
 * The wire format of a Content-Type header value (parameters such as `charset` are ignored,
 * case-insensitive). A missing or empty value means JSON.
 * @throws AnyServeError UNSUPPORTED_MEDIA_TYPE for any other media type
 */
export function formatOfContentType(ct: string | undefined): WireFormat {
  if (ct === undefined || ct === "application/json") return "json"; // the common case, without splitting (per request on the hot path)
  const media = ct.split(";", 1)[0]!.trim().toLowerCase();
  if (media === "") return "json";
  const format = FORMATS.get(media);
  if (format === undefined) {
    throw new AnyServeError(
      "UNSUPPORTED_MEDIA_TYPE",
      `Content-Type '${media.slice(0, 100)}' is not supported; use application/json, application/octet-stream (binary tensor data) or application/x-protobuf`,
    );
  }
  return format;
}
