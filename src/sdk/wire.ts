/**
 * How the SDK's transports (REST, direct frames) put a request on the wire and read the answer
 * or the error back, so both send the same bytes and raise the same errors.
 */
import { AnyServeError, codeForHttpStatus, isErrorCode } from "../errors.js";
import { decodeResponse, encodeRequest } from "../protocol/codec.js";
import type { EncodedBody, InferRequest, InferResponse } from "../protocol/types.js";

/** A request as JSON; in the binary tensor extension when asked, or when a tensor needs it (FP16/BF16). */
export function encodeCall(req: InferRequest, binary: boolean | undefined): EncodedBody {
  return encodeRequest(req, "json", { binary: binary ?? req.inputs.some((t) => t.datatype === "FP16" || t.datatype === "BF16") });
}

/** An answer's bytes, by their Content-Type and binary-header length. */
export function decodeAnswer(body: Buffer, contentType: string | undefined, headerLength: number | undefined): InferResponse {
  return decodeResponse(body, {
    contentType: contentType ?? "application/json",
    ...(headerLength !== undefined ? { headerLength } : {}),
  });
}

/** Rebuilds the server's error from its `{"error", "code"}` body. */
export function errorFromBody(status: number, body: Buffer): AnyServeError {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { error?: unknown; code?: unknown };
    if (typeof parsed.error === "string") {
      return new AnyServeError(isErrorCode(parsed.code) ? parsed.code : codeForHttpStatus(status), parsed.error);
    }
  } catch {
    // not JSON: fall through
  }
  return new AnyServeError(codeForHttpStatus(status), `HTTP ${status}: ${body.toString("utf8").slice(0, 200)}`);
}
