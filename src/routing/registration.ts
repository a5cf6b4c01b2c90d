/**
 * What a replica says about itself when it registers (`POST /register`, the seed's body) and what
 * the route table lists: checked here, for the API server's control routes and the direct
 * client's copy of the table alike.
 */
import { AnyServeError } from "../errors.js";
import { normalizeCapability } from "../protocol/capability.js";
import type { CapabilityState, RegisteredCapability, ReplicaRegistration } from "./registry.js";

const ID_PATTERN = /^[\w.-]{1,128}$/;
const STATES = new Set<CapabilityState>(["warm", "cold", "failed"]);
const MAX_CAPABILITIES = 1024;

function field(body: unknown, name: string): unknown {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new AnyServeError("INVALID_REGISTRATION", "body: expected a JSON object");
  }
  return (body as Record<string, unknown>)[name];
}

export function replicaIdOf(body: unknown): string {
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

export function parseCapabilities(caps: unknown, states: unknown): RegisteredCapability[] {
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
