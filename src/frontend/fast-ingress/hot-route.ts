/**
 * Which requests the fast ingress answers itself — the three inference routes that carry nearly
 * all traffic — and how their headers become an {@link IncomingCall}: through the helpers the REST
 * front end uses (frontend/call-head.ts), so both ingresses read, check and refuse headers alike. Every other request is
 * node:http's (see ingress.ts).
 */
import type { WireFormat } from "../../protocol/types.js";
import type { CancelSignal } from "../../util/cancel.js";
import type { IncomingCall } from "../../protocol/call.js";
import type { RequestHeaders } from "../../util/http.js";
import { type CallLimits, callFromHeaders, headerQuery, modelQuery, modelRouteOf } from "../call-head.js";

/** A hot route: how the query is found and which wire format is forced; `error` when the path itself is malformed. */
export interface HotRoute {
  forced: WireFormat | undefined;
  model: { name: string; version: string | undefined } | undefined;
  error?: unknown;
}

const INFER: HotRoute = { forced: undefined, model: undefined };
const INFER_JSON: HotRoute = { forced: "json", model: undefined };
const MODELS = "/v2/models/";

/**
 * `POST /infer`, `POST /infer/json`, `POST /v2/models/{m}[/versions/{v}]/infer`; undefined for
 * anything else (streams, GETs, the control plane… and other methods on these paths, whose 405
 * answers node:http gives).
 */
export function hotRoute(method: string, url: string): HotRoute | undefined {
  if (method !== "POST") return undefined;
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  if (path === "/infer") return INFER;
  if (path === "/infer/json") return INFER_JSON;
  if (!path.startsWith(MODELS) || !path.endsWith("/infer")) return undefined;
  try {
    const route = modelRouteOf(path);
    if (route === undefined || route.action !== "infer") return undefined;
    return { forced: undefined, model: { name: route.name, version: route.version } };
  } catch (error) {
    // A malformed model name on an infer route: answered here, as the REST front end would.
    return { forced: undefined, model: undefined, error };
  }
}

/** The call a hot request's headers describe (body still empty). Throws AnyServeError. */
export function callOf(route: HotRoute, headers: RequestHeaders, limits: CallLimits, signal: CancelSignal): IncomingCall {
  if (route.error !== undefined) throw route.error;
  const m = route.model;
  const query = m === undefined ? headerQuery(headers) : modelQuery(m.name, m.version);
  return callFromHeaders(headers, query, route.forced, m, limits, signal);
}
