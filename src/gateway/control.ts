/**
 * The API server's control routes (the seed's): register, unregister, heartbeat, registry,
 * route, health. Register/unregister/heartbeat need the bearer token when one is configured.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AnyServeError } from "../errors.js";
import { normalizeCapability } from "../protocol/capability.js";
import { readJson, sendJson } from "../util/http.js";
import { requireBearer } from "../util/auth.js";
import type { RouteHandler } from "../util/http.js";
import type { ColdStarts } from "./cold-start.js";
import type { Forwarder } from "./forwarder.js";
import type { ServicePolicies } from "./policies.js";
import type { Registry, ReplicaEntry } from "../routing/registry.js";
import { parseHeartbeat, parseRegistration, parseUnregister } from "../routing/registration.js";

export interface ControlOptions {
  registry: Registry;
  policies: ServicePolicies;
  /** For each replica's ejection and circuit state in /registry. */
  forwarder: Forwarder;
  /** Services scaled to zero, listed in /registry as `cold`. */
  coldStarts?: ColdStarts;
  token?: string | undefined;
  defaultHeartbeatMs: number;
}

export function controlRoutes(o: ControlOptions): Record<string, RouteHandler> {
  const guard =
    (fn: (req: IncomingMessage, res: ServerResponse) => Promise<void>): RouteHandler =>
    (req, res) => {
      checkToken(req, o.token);
      return fn(req, res);
    };
  return {
    "GET /health": (_q, res) => sendJson(res, 200, { status: "healthy", replicas: o.registry.size }),
    "GET /registry": (_q, res) => {
      const f = o.forwarder;
      const replicas = o.registry.list().map((e) => ({
        ...replicaJson(e),
        outlier: f.outliers.snapshot(e.replicaId),
        circuits: f.circuits.snapshot(e.replicaId),
      }));
      sendJson(res, 200, {
        replicas,
        total: replicas.length,
        cold: o.coldStarts?.describe() ?? [],
        policies: o.policies.describe(),
        failover: { ...f.counters, retry_budget: f.retryBudget.snapshot() },
      });
    },
    "GET /route": (req, res) => {
      const query = normalizeCapability(Object.fromEntries(new URL(req.url ?? "/", "http://x").searchParams), "route query");
      const e = o.forwarder.lookup(query);
      sendJson(res, 200, { replica_id: e.replicaId, endpoint: e.endpoint, http_endpoint: e.httpEndpoint ?? null });
    },
    "POST /register": guard(async (req, res) => {
      const reg = parseRegistration(await readJson(req), o.defaultHeartbeatMs);
      o.registry.register(reg);
      sendJson(res, 200, { success: true, message: `registered replica '${reg.replicaId}' with ${reg.capabilities.length} capabilities` });
    }),
    "DELETE /unregister": guard(async (req, res) => {
      const id = parseUnregister(await readJson(req));
      if (!o.registry.unregister(id)) throw new AnyServeError("REPLICA_NOT_FOUND", `replica '${id}' is not registered`);
      sendJson(res, 200, { success: true, message: `unregistered replica '${id}'` });
    }),
    "POST /heartbeat": guard(async (req, res) => {
      const { replicaId, capabilities } = parseHeartbeat(await readJson(req));
      o.registry.heartbeat(replicaId, capabilities === undefined ? {} : { capabilities });
      sendJson(res, 200, { success: true });
    }),
  };
}

export function replicaJson(e: ReplicaEntry): Record<string, unknown> {
  return {
    replica_id: e.replicaId,
    endpoint: e.endpoint,
    http_endpoint: e.httpEndpoint ?? null,
    protocol: e.protocol ?? "anyserve",
    capabilities: e.capabilities.map((c) => c.capability),
    states: e.capabilities.map((c) => c.state),
    service: e.service ?? null,
    node: e.node ?? null,
    registered_at: new Date(e.registeredAt).toISOString(),
    last_heartbeat: new Date(e.lastHeartbeat).toISOString(),
    heartbeat_interval_ms: e.heartbeatIntervalMs,
    in_flight: e.inFlight,
    available: e.available,
    health: e.healthy ? "healthy" : "unhealthy",
    failed_health_checks: e.probeFailures,
    ...(e.probeError !== undefined ? { health_error: e.probeError } : {}),
  };
}

/** Throws UNAUTHENTICATED unless the request carries the control-plane token. */
export function checkToken(req: IncomingMessage, token: string | undefined): void {
  requireBearer(req, token, "this control-plane route");
}
