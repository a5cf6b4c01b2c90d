/**
 * The API server's control routes (the seed's): register, unregister, heartbeat, registry,
 * route, health. Register/unregister/heartbeat need the bearer token when one is configured.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AnyServeError } from "../errors.js";
import { normalizeCapability } from "../protocol/capability.js";
import { readJson, sendJson } from "../util/http.js";
import { requireBearer } from "../util/auth.js";
import type { RouteHandler } from "../frontend/rest.js";
import type { Forwarder } from "./forwarder.js";
import type { ServicePolicies } from "./policies.js";
import type { CapabilityState, RegisteredCapability, Registry, ReplicaEntry, ReplicaRegistration } from "../routing/registry.js";

const ID_PATTERN = /^[\w.-]{1,128}$/;
const STATES = new Set<CapabilityState>(["warm", "cold", "failed"]);
const MAX_CAPABILITIES = 1024;

export interface ControlOptions {
  registry: Registry;
  policies: ServicePolicies;
  /** For each replica's ejection and circuit state in /registry. */
  forwarder: Forwarder;
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
      const id = replicaIdOf(await readJson(req));
      if (!o.registry.unregister(id)) throw new AnyServeError("REPLICA_NOT_FOUND", `replica '${id}' is not registered`);
      sendJson(res, 200, { success: true, message: `unregistered replica '${id}'` });
    }),
    "POST /heartbeat": guard(async (req, res) => {
      const body = await readJson(req);
      const id = replicaIdOf(body);
      const caps = (body as { capabilities?: unknown }).capabilities;
      const update = caps === undefined ? {} : { capabilities: parseCapabilities(caps, (body as { states?: unknown }).states) };
      o.registry.heartbeat(id, update);
      sendJson(res, 200, { success: true });
    }),
  };
}

export function replicaJson(e: ReplicaEntry): Record<string, unknown> {
  return {
    replica_id: e.replicaId,
    endpoint: e.endpoint,
    http_endpoint: e.httpEndpoint ?? null,
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

function field(body: unknown, name: string): unknown {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new AnyServeError("INVALID_REGISTRATION", "body: expected a JSON object");
  }
  return (body as Record<string, unknown>)[name];
}

function replicaIdOf(body: unknown): string {
  const id = field(body, "replica_id");
  if (typeof id !== "string" || !ID_PATTERN.test(id)) {
    throw new AnyServeError(
      "INVALID_REGISTRATION",
      `replica_id: expected 1-128 characters of [A-Za-z0-9_.-], got ${JSON.stringify(id ?? null)?.slice(0, 64)}`,
    );
  }
  return id;
}

export function parseRegistration(body: unknown, defaultHeartbeatMs: number): ReplicaRegistration {
  const replicaId = replicaIdOf(body);
  const endpoint = field(body, "endpoint");
  if (typeof endpoint !== "string" || !/^[\w.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(endpoint)) {
    throw new AnyServeError("INVALID_REGISTRATION", `endpoint: expected host:port, got ${JSON.stringify(endpoint ?? null)?.slice(0, 64)}`);
  }
  const caps = field(body, "capabilities");
  if (caps === undefined) throw new AnyServeError("INVALID_REGISTRATION", "capabilities: required (a list of {key: value} objects)");
  const reg: ReplicaRegistration = {
    replicaId,
    endpoint,
    capabilities: parseCapabilities(caps, field(body, "states")),
    heartbeatIntervalMs: intervalOf(field(body, "heartbeat_interval_ms"), defaultHeartbeatMs),
  };
  const http = field(body, "http_endpoint");
  if (http !== undefined && http !== null) reg.httpEndpoint = checkHttpEndpoint(http);
  const service = field(body, "service");
  if (typeof service === "string") reg.service = service.slice(0, 128);
  const node = field(body, "node");
  if (typeof node === "string") reg.node = node.slice(0, 128);
  return reg;
}

function parseCapabilities(caps: unknown, states: unknown): RegisteredCapability[] {
  if (!Array.isArray(caps) || caps.length > MAX_CAPABILITIES) {
    throw new AnyServeError("INVALID_REGISTRATION", `capabilities: expected a list of at most ${MAX_CAPABILITIES} {key: value} objects`);
  }
  if (states !== undefined && (!Array.isArray(states) || states.length !== caps.length)) {
    throw new AnyServeError("INVALID_REGISTRATION", `states: expected a list of ${caps.length} states (warm, cold, failed)`);
  }
  return caps.map((c, i) => {
    const state = (states as unknown[] | undefined)?.[i] ?? "warm";
    if (!STATES.has(state as CapabilityState)) {
      throw new AnyServeError("INVALID_REGISTRATION", `states[${i}]: expected warm, cold or failed, got ${JSON.stringify(state)}`);
    }
    try {
      return { capability: normalizeCapability(c, `capabilities[${i}]`), state: state as CapabilityState };
    } catch (err) {
      throw new AnyServeError("INVALID_REGISTRATION", (err as Error).message);
    }
  });
}

function intervalOf(value: unknown, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 10 || value > 3_600_000) {
    throw new AnyServeError(
      "INVALID_REGISTRATION",
      `heartbeat_interval_ms: expected an integer from 10 to 3600000, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Only http(s) host:port URLs; never file:, never link-local (cloud metadata) addresses. */
function checkHttpEndpoint(value: unknown): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new AnyServeError(
      "URL_NOT_ALLOWED",
      `http_endpoint: expected an http(s)://host:port URL, got ${JSON.stringify(String(value).slice(0, 64))}`,
    );
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password) {
    throw new AnyServeError(
      "URL_NOT_ALLOWED",
      `http_endpoint: only http(s) URLs without credentials are allowed, got scheme '${url.protocol}'`,
    );
  }
  if (url.hostname.startsWith("169.254.") || url.hostname.toLowerCase().startsWith("[fe80:")) {
    throw new AnyServeError("URL_NOT_ALLOWED", `http_endpoint: link-local address ${url.hostname} is not allowed`);
  }
  return `${url.protocol}//${url.host}`;
}
