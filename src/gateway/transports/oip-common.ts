/**
 * What the two foreign transports (OIP gRPC, OIP REST) share: the model name a foreign server
 * expects, turning a call into the other wire format when the caller and the server speak different
 * ones, and mapping a foreign server's failures onto the error catalogue.
 *
 * Bodies are forwarded as they are when the caller and the server speak the same encoding (a
 * protobuf `ModelInferRequest` to a gRPC server — only `model_name`/`model_version` are set, in
 * place — or JSON to a REST server); otherwise the gateway decodes the call once and encodes it
 * once, and the same for the answer.
 */
import { AnyServeError, codeForGrpcStatus, codeForHttpStatus, GrpcStatus, isErrorCode, type ErrorCode } from "../../errors.js";
import type { IncomingCall } from "../../protocol/call.js";
import { matches } from "../../protocol/capability.js";
import { decodeRequest, encodeResponse } from "../../protocol/codec.js";
import { formatOfContentType } from "../../protocol/media-type.js";
import type { InferRequest, InferResponse } from "../../protocol/types.js";
import type { FrameReply } from "../../transport/frame-client.js";
import type { ReplicaEntry } from "../../routing/registry.js";
import type { Target } from "./transport.js";

/** The largest answer read from a foreign server (its size is not the caller's to choose, but it is bounded). */
export const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** Model-ready probes per health check at most (a server registered with many models is checked on the first ones). */
const MAX_PROBED_MODELS = 8;

/** A model as a foreign OIP server names it. */
export interface ForeignModel {
  name: string;
  version: string | undefined;
}

/**
 * The model a call routed by `target.query` is for on the foreign server: the `model` of the first
 * registered capability that matches, else its `type` (the seed's replicas read `model_name` as
 * their type); `version` as the model version. Registration ensures one of the two keys.
 */
export function foreignModel(target: Target): ForeignModel {
  const cap = target.entry.capabilities.find((c) => matches(c.capability, target.query))?.capability ?? target.query;
  return { name: cap.model ?? cap.type ?? "", version: cap.version };
}

/** The distinct models a foreign server was registered with, for its model-ready probes. */
export function foreignModels(entry: ReplicaEntry): ForeignModel[] {
  const seen = new Map<string, ForeignModel>();
  for (const { capability: c } of entry.capabilities) {
    const m = { name: c.model ?? c.type ?? "", version: c.version };
    seen.set(`${m.name}\u0000${m.version ?? ""}`, m);
    if (seen.size >= MAX_PROBED_MODELS) break;
  }
  return [...seen.values()];
}

/** True when the call's body is a protobuf `ModelInferRequest` (else JSON, maybe with binary tensor data). */
export function isProtobufCall(call: IncomingCall): boolean {
  return formatOfContentType(call.contentType) === "protobuf";
}

/** The call's request, decoded once (a bad body is the caller's 400, as at a replica). */
export function decodeCall(call: IncomingCall): InferRequest {
  return decodeRequest(call.body, { contentType: call.contentType, headerLength: call.headerLength });
}

/** An answer encoded in the caller's wire format, as the frames would carry it. */
export function replyIn(call: IncomingCall, res: InferResponse, req: InferRequest | undefined): FrameReply {
  const out = encodeResponse(res, call.format, req);
  return { meta: out.headerLength === undefined ? { ct: out.contentType } : { ct: out.contentType, hl: out.headerLength }, body: out.body };
}

/** `OIP gRPC replica 'triton-0' (10.0.0.5:8001)` — how messages name a foreign replica. */
export function describeReplica(entry: ReplicaEntry): string {
  return entry.protocol === "oip-rest"
    ? `OIP REST replica '${entry.replicaId}' (${entry.httpEndpoint ?? entry.endpoint})`
    : `OIP gRPC replica '${entry.replicaId}' (${entry.endpoint})`;
}

/**
 * A foreign server's HTTP error answer as a catalogue error. Its own code is kept when it sent one
 * of ours (`{"error", "code"}`: an anyserve server registered as OIP); otherwise 404 is the model
 * missing there, 500 the model failing, and the rest as any peer's status (400 → INVALID_REQUEST,
 * 503 → NO_READY_REPLICA, 504 → DEADLINE_EXCEEDED …).
 */
export function errorFromHttp(entry: ReplicaEntry, status: number, body: Buffer): AnyServeError {
  let message = body.toString("utf8", 0, Math.min(body.length, 2048)).trim();
  let code: ErrorCode | undefined;
  try {
    const parsed = JSON.parse(message) as { error?: unknown; code?: unknown; detail?: unknown };
    const text = parsed.error ?? parsed.detail;
    if (typeof text === "string") message = text;
    if (isErrorCode(parsed.code)) code = parsed.code;
  } catch {
    // Not JSON: the text itself is the message.
  }
  code ??= status === 404 ? "MODEL_NOT_FOUND" : status === 500 ? "WORKER_ERROR" : codeForHttpStatus(status);
  return new AnyServeError(code, `${describeReplica(entry)} answered ${status}: ${message || "(no message)"}`);
}

/** A gRPC failure from a foreign server as a catalogue error (as {@link errorFromHttp}: NOT_FOUND is the model, INTERNAL/UNKNOWN the model failing). */
export function errorFromGrpc(entry: ReplicaEntry, status: number, details: string, ownCode: unknown): AnyServeError {
  let code: ErrorCode;
  if (isErrorCode(ownCode)) code = ownCode;
  else if (status === GrpcStatus.NOT_FOUND) code = "MODEL_NOT_FOUND";
  else if (status === GrpcStatus.INTERNAL || status === GrpcStatus.UNKNOWN) code = "WORKER_ERROR";
  else code = codeForGrpcStatus(status);
  const name = Object.keys(GrpcStatus).find((k) => GrpcStatus[k as keyof typeof GrpcStatus] === status) ?? String(status);
  return new AnyServeError(code, `${describeReplica(entry)} answered ${name}: ${details || "(no message)"}`);
}

/** Why a call ended on our side: the caller's cancellation (or deadline) as it was given, else CANCELLED. */
export function cancelReason(call: IncomingCall): AnyServeError {
  const reason: unknown = call.signal.reason;
  return reason instanceof AnyServeError ? reason : new AnyServeError("CANCELLED", "the caller cancelled the request");
}

/** Runs `onAbort` once if the call's signal fires before `stop()` is called; returns `stop`. */
export function onCancel(call: IncomingCall, onAbort: () => void): () => void {
  const signal = call.signal;
  signal.addEventListener("abort", onAbort);
  return () => signal.removeEventListener("abort", onAbort);
}
