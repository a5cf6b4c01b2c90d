/**
 * The meta part of a REQUEST frame: an IncomingCall without its body and signal, in short keys
 * (it is serialised once per request). Both ends use these two functions, so the gateway and
 * the replica cannot disagree on a field.
 *
 * | key | meaning |
 * |---|---|
 * | k | kind: infer, stream, meta (model metadata), health (the gateway's readiness probe) |
 * | q | capability query |
 * | ct, hl | body Content-Type, Inference-Header-Content-Length |
 * | f | answer wire format: json or protobuf |
 * | to | caller's remaining time (ms) |
 * | rid | request id |
 * | d, tr | delegation depth, replica ids tried |
 * | m | model route {name, version} |
 *
 * Answers: RESPONSE meta `{ct, hl?}` on success, `{code, error}` on failure; streams send
 * CHUNK frames then END with `{}` or `{code, error}`.
 */
import { AnyServeError, isErrorCode } from "../errors.js";
import type { IncomingCall } from "../frontend/backend.js";
import { normalizeCapability } from "../protocol/capability.js";
import type { EncodedBody } from "../protocol/types.js";
import type { CancelSignal } from "../util/cancel.js";

export type FrameKind = "infer" | "stream" | "meta" | "health";

export function toFrameMeta(call: IncomingCall, kind: FrameKind): Record<string, unknown> {
  const meta: Record<string, unknown> = { k: kind, q: call.query, f: call.format, to: call.timeoutMs, rid: call.requestId };
  if (call.contentType !== undefined) meta.ct = call.contentType;
  if (call.headerLength !== undefined) meta.hl = call.headerLength;
  if (call.depth !== undefined) meta.d = call.depth;
  if (call.tried !== undefined && call.tried.length > 0) meta.tr = call.tried;
  if (call.model !== undefined) meta.m = call.model;
  return meta;
}

export function fromFrameMeta(meta: Record<string, unknown>, body: Buffer, signal: CancelSignal): IncomingCall & { kind: FrameKind } {
  const kind = meta.k;
  if (kind !== "infer" && kind !== "stream" && kind !== "meta" && kind !== "health") {
    throw new AnyServeError("UPSTREAM_PROTOCOL_ERROR", `frame kind ${JSON.stringify(kind)} is not one of infer, stream, meta, health`);
  }
  const call: IncomingCall & { kind: FrameKind } = {
    kind,
    query: normalizeCapability(meta.q ?? {}, "frame query"),
    body,
    format: meta.f === "protobuf" ? "protobuf" : "json",
    timeoutMs: typeof meta.to === "number" && meta.to >= 0 ? meta.to : 30_000,
    requestId: typeof meta.rid === "string" ? meta.rid : "",
    signal,
  };
  if (typeof meta.ct === "string") call.contentType = meta.ct;
  if (typeof meta.hl === "number") call.headerLength = meta.hl;
  if (typeof meta.d === "number") call.depth = meta.d;
  if (Array.isArray(meta.tr)) call.tried = meta.tr.filter((t): t is string => typeof t === "string");
  const m = meta.m as { name?: unknown; version?: unknown } | undefined;
  if (m && typeof m.name === "string") call.model = { name: m.name, version: typeof m.version === "string" ? m.version : undefined };
  return call;
}

/** The meta of an error answer. */
export function errorMeta(err: unknown): Record<string, unknown> {
  const e = AnyServeError.from(err, "INTERNAL");
  return { code: e.code, error: e.message };
}

/** A RESPONSE frame's answer `{ct, hl?}` as the encoded body it carries. */
export function answerOf(reply: { meta: Record<string, unknown>; body: Buffer }): EncodedBody {
  const meta = reply.meta;
  const out: EncodedBody = { body: reply.body, contentType: typeof meta.ct === "string" ? meta.ct : "application/json" };
  if (typeof meta.hl === "number") out.headerLength = meta.hl;
  return out;
}

/** An answer's `{code, error}`, rebuilt into the error the replica raised; undefined for a success. */
export function answerError(meta: Record<string, unknown>, replicaId: string): AnyServeError | undefined {
  const code = meta.code;
  if (code === undefined) return undefined;
  const message = typeof meta.error === "string" ? meta.error : `replica '${replicaId}' failed`;
  return new AnyServeError(isErrorCode(code) ? code : "INTERNAL", message);
}
