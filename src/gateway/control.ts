/**
 * The API server's control routes (the seed's): register, unregister, heartbeat, registry,
 * route, health. Register/unregister/heartbeat need the control-plane token when one is
 * configured, and a replica's own secret to touch its id (registrations.ts); `/registry` and
 * `/route` need the read scope (access.ts); `/health` is open.
 */
import { normalizeCapability } from "../protocol/capability.js";
import { sendJson } from "../util/http.js";
import { readJson } from "../util/request-body.js";
import type { RouteHandler } from "../util/http.js";
import type { ColdStarts } from "./cold-start.js";
import type { Access } from "./access.js";
import type { Forwarder } from "./forwarder.js";
import type { ServicePolicies } from "./policies.js";
import type { Caller, RegistrationGate } from "./registrations.js";
import type { Registry, ReplicaEntry } from "../routing/registry.js";
import { parseHeartbeat, parseRegistration, parseUnregister } from "../routing/registration.js";
import { AnyServeError } from "../errors.js";

export interface ControlOptions {
  registry: Registry;
  policies: ServicePolicies;
  /** For each replica's ejection and circuit state in /registry. */
  forwarder: Forwarder;
  /** Services scaled to zero, listed in /registry as `cold`. */
  coldStarts?: ColdStarts;
  access: Access;
  /** Ownership of ids and the bounds on registrations. */
  gate: RegistrationGate;
  defaultHeartbeatMs: number;
}

export function controlRoutes(o: ControlOptions): Record<string, RouteHandler> {
  const { access, gate } = o;
  // The routes are behind the control token when there is one, so a caller that got past it holds it.
  const caller = (): Caller => (access.open ? "anyone" : "control");
  return {
    "GET /health": (_q, res) => sendJson(res, 200, { status: "healthy", replicas: o.registry.size }),
    "GET /registry": access.guardRead("GET /registry", (_q, res) => {
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
    }),
    "GET /route": access.guardRead("GET /route", (req, res) => {
      const query = normalizeCapability(Object.fromEntries(new URL(req.url ?? "/", "http://x").searchParams), "route query");
      const e = o.forwarder.lookup(query);
      sendJson(res, 200, { replica_id: e.replicaId, endpoint: e.endpoint, http_endpoint: e.httpEndpoint ?? null });
    }),
    "POST /register": access.guardControl("POST /register", async (req, res) => {
      const reg = parseRegistration(await readJson(req), o.defaultHeartbeatMs);
      const entry = gate.register(reg, caller());
      sendJson(res, 200, {
        success: true,
        message: `registered replica '${reg.replicaId}' with ${reg.capabilities.length} capabilities`,
        // The replica's own, or the one issued now: heartbeats and unregister show it.
        replica_secret: entry.secret,
      });
    }),
    "DELETE /unregister": access.guardControl("DELETE /unregister", async (req, res) => {
      const u = parseUnregister(await readJson(req));
      if (!gate.unregister(u, caller())) throw new AnyServeError("REPLICA_NOT_FOUND", `replica '${u.replicaId}' is not registered`);
      sendJson(res, 200, { success: true, message: `unregistered replica '${u.replicaId}'` });
    }),
    "POST /heartbeat": access.guardControl("POST /heartbeat", async (req, res) => {
      gate.heartbeat(parseHeartbeat(await readJson(req)), caller());
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
