/**
 * An inference call as its request's head describes it, read the same way by both HTTP front ends
 * (rest.ts over node:http, fast-ingress/ over raw sockets): the model route's path
 * (`/v2/models/{name}[/versions/{v}][/{action}]`), the `X-Capability-*` headers of a header-routed
 * request, and {@link callFromHeaders} — content type and wire format, binary header length,
 * request id, timeout, delegation state, affinity key. Bad input throws AnyServeError with its
 * code (INVALID_CAPABILITY, MISSING_CAPABILITY, UNSUPPORTED_MEDIA_TYPE, INVALID_HEADER).
 *
 * @example
 * ```ts
 * const route = modelRouteOf("/v2/models/llama/versions/2/infer"); // { name: "llama", version: "2", action: "infer" }
 * const call = callFromHeaders(req.headers, modelQuery(route.name, route.version), undefined, route, limits, signal);
 * ```
 */
import { AnyServeError } from "../errors.js";
import { AFFINITY_HEADER, type IncomingCall } from "../protocol/call.js";
import { type CapabilityMap, capabilityFromHeaders, normalizeCapability } from "../protocol/capability.js";
import { formatOfContentType } from "../protocol/media-type.js";
import { HEADER_INFERENCE_LENGTH, type WireFormat } from "../protocol/types.js";
import { type DataPlaneAuth, REPLICA_HEADER } from "../util/auth.js";
import type { CancelSignal } from "../util/cancel.js";
import { EMPTY, intHeader, type RequestHeaders, requestIdOf } from "../util/http.js";

const MODEL_ROUTE = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(?:\/(infer|ready|generate_stream))?$/;

/** The capability query of a model route: `model` (and `version`), normalized. */
export function modelQuery(name: string, version: string | undefined): CapabilityMap {
  return normalizeCapability(version === undefined ? { model: name } : { model: name, version }, "model");
}

function decodeSegment(raw: string, what: string): string {
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    throw new AnyServeError("INVALID_CAPABILITY", `${what} is not valid percent-encoding: ${JSON.stringify(raw.slice(0, 64))}`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (text.length === 0 || text.length > 256 || /[\u0000-\u001f/\\]/.test(text)) {
    throw new AnyServeError(
      "INVALID_CAPABILITY",
      `${what}: expected 1-256 characters without control characters or slashes, got ${JSON.stringify(text.slice(0, 64))}`,
    );
  }
  return text;
}

/** A `/v2/models/{name}[/versions/{v}][/{action}]` path, decoded; the action is "metadata" when none is named. */
export interface ModelRoute {
  name: string;
  version: string | undefined;
  action: string;
}

/** Reads a model route's path; undefined when it is not one. Throws INVALID_CAPABILITY for a malformed name or version. */
export function modelRouteOf(path: string): ModelRoute | undefined {
  const m = MODEL_ROUTE.exec(path);
  if (!m) return undefined;
  const name = decodeSegment(m[1]!, "model name");
  const version = m[2] === undefined ? undefined : decodeSegment(m[2], "model version");
  return { name, version, action: m[3] ?? "metadata" };
}

/** The query of a header-routed request (`POST /infer…`): its `X-Capability-*` headers, at least one. */
export function headerQuery(headers: RequestHeaders): CapabilityMap {
  const query = capabilityFromHeaders(headers);
  if (Object.keys(query).length === 0) {
    throw new AnyServeError(
      "MISSING_CAPABILITY",
      "no capability in the request: send X-Capability-<Key>: <value> headers (e.g. X-Capability-Type: chat)",
    );
  }
  return query;
}

/** The time an inference call gets when the caller sets none, and the most it may ask for (ms), and who may call. */
export interface CallLimits {
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /**
   * The inference token check, and which callers are replicas of the deployment (whose delegation
   * headers count). Without it the data plane is open and delegation headers are ignored.
   */
  auth?: DataPlaneAuth | undefined;
}

/** Delegation header values read at most (a longer `X-Delegated-From` is cut, never echoed whole). */
const MAX_TRIED = 16;

/**
 * An inference call as its request's headers describe it — content type and wire format, binary
 * header length, request id, timeout, delegation state, affinity key — with an empty body that the
 * caller sets once read. The REST front end and the fast ingress both build calls here, so they
 * read and refuse headers the same way. Throws AnyServeError (415, INVALID_HEADER).
 */
export function callFromHeaders(
  headers: RequestHeaders,
  query: CapabilityMap,
  forced: WireFormat | undefined,
  model: IncomingCall["model"],
  limits: CallLimits,
  signal: CancelSignal,
): IncomingCall {
  const raw = headers["content-type"];
  const contentType = Array.isArray(raw) ? raw[0] : raw;
  const format = forced ?? formatOfContentType(contentType);
  if (forced === "json" && contentType !== undefined && formatOfContentType(contentType) !== "json") {
    throw new AnyServeError(
      "UNSUPPORTED_MEDIA_TYPE",
      `Content-Type '${contentType.slice(0, 64)}' is not accepted here: expected application/json`,
    );
  }
  const fromReplica = limits.auth?.check(headers.authorization, headers[REPLICA_HEADER]) ?? false;
  const call: IncomingCall = {
    query,
    body: EMPTY,
    contentType,
    headerLength: intHeader(headers, HEADER_INFERENCE_LENGTH),
    format,
    timeoutMs: Math.min(intHeader(headers, "x-anyserve-timeout-ms") ?? limits.defaultTimeoutMs, limits.maxTimeoutMs),
    requestId: requestIdOf(headers),
    signal,
    model,
  };
  // Delegation: `X-Delegated-From` (comma-separated replica ids tried) and `X-Delegation-Depth`,
  // only from a replica of this deployment: from anyone else they would steer routing.
  const from = headers["x-delegated-from"];
  if (fromReplica && (from !== undefined || headers["x-delegation-depth"] !== undefined)) {
    call.tried = typeof from === "string" ? triedIds(from) : [];
    call.depth = intHeader(headers, "x-delegation-depth", 64) ?? (call.tried.length > 0 ? 1 : 0);
  }
  const affinity = headers[AFFINITY_HEADER];
  if (typeof affinity === "string") call.affinityKey = affinity.slice(0, 256);
  return call;
}

/** The replica ids of an `X-Delegated-From` value: at most {@link MAX_TRIED}, each a valid id (others dropped). */
function triedIds(value: string): string[] {
  const ids: string[] = [];
  for (const part of value.slice(0, MAX_TRIED * 130).split(",")) {
    const id = part.trim();
    if (/^[\w.-]{1,128}$/.test(id)) ids.push(id);
    if (ids.length === MAX_TRIED) break;
  }
  return ids;
}
