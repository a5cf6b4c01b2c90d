/**
 * What a replica says about itself when it registers (`POST /register`, the seed's body — and
 * `protocol` for a server that is not anyserve: see {@link registrationSchema}), heartbeats
 * (`POST /heartbeat`) or leaves (`DELETE /unregister`), and what each row of the route table lists:
 * one zod schema per body, for the API server's control routes and the direct client's copy of the
 * table alike. A bad body is 400 `INVALID_REGISTRATION` (or `URL_NOT_ALLOWED` for an
 * `http_endpoint` the gateway must not call) naming each bad field, what it expects and what it got:
 *
 * ```
 * replica_id: expected 1-128 characters of [A-Za-z0-9_.-], got "a b"; heartbeat_interval_ms: expected an integer from 10 to 3600000, got 2.5
 * ```
 */
import { z } from "zod";
import { AnyServeError, type ErrorCode } from "../errors.js";
import { normalizeCapability } from "../protocol/capability.js";
import { hostOfEndpoint, refusedHost } from "../util/address.js";
import type { CapabilityState, RegisteredCapability, ReplicaRegistration } from "./registry.js";

const MAX_CAPABILITIES = 1024;
/** Problems listed in one error message at most (a body can have many). */
const MAX_REPORTED = 5;

const ID_RULE = "expected 1-128 characters of [A-Za-z0-9_.-]";
const replicaId = z.string(ID_RULE).regex(/^[\w.-]{1,128}$/, ID_RULE);

/** One capability, checked and normalised by the protocol's own rules (the same as every query's). */
const capability = z.unknown().transform((value, ctx) => {
  try {
    return normalizeCapability(value, "");
  } catch (err) {
    // normalizeCapability's message starts with `where` (here empty): ": expected …" or ".key: expected …".
    ctx.addIssue({ code: "custom", message: (err as Error).message, input: value, params: { complete: true } });
    return z.NEVER;
  }
});

const capabilities = z
  .array(capability, "expected a list of {key: value} objects")
  .max(MAX_CAPABILITIES, `expected at most ${MAX_CAPABILITIES} capabilities`);

const states = z.array(
  z.enum(["warm", "cold", "failed"], "expected warm, cold or failed"),
  "expected a list of states (warm, cold, failed)",
);

/** Milliseconds; absent or null: the API server's default. */
const INTERVAL_RULE = "expected an integer from 10 to 3600000";
const heartbeatInterval = z.number(INTERVAL_RULE).int(INTERVAL_RULE).min(10, INTERVAL_RULE).max(3_600_000, INTERVAL_RULE).nullish();

/**
 * Only http(s) host:port URLs without credentials; never file:, never a link-local or cloud
 * metadata address in any spelling (util/address.ts). Kept as the URL parser normalised it.
 */
const httpEndpoint = z
  .unknown()
  .transform((value, ctx) => {
    if (value === undefined || value === null) return undefined;
    const refuse = (message: string): never => {
      ctx.addIssue({ code: "custom", message, input: value, params: { code: "URL_NOT_ALLOWED" } });
      return z.NEVER;
    };
    let url: URL;
    try {
      url = new URL(String(value).slice(0, 2048));
    } catch {
      return refuse("expected an http(s)://host:port URL");
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password) {
      return refuse(`only http(s) URLs without credentials are allowed, got scheme '${url.protocol}'`);
    }
    const why = refusedHost(url.hostname);
    if (why !== undefined) return refuse(`not allowed: ${why}`);
    return `${url.protocol}//${url.host}`;
  })
  .optional();

/** `host:port` (the seed's gRPC endpoint), with the host checked and normalised as http_endpoint's. */
const endpoint = z
  .string("expected host:port")
  .regex(/^[\w.-]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/, "expected host:port")
  .transform((value, ctx) => {
    const host = hostOfEndpoint(value);
    if (host === undefined) {
      ctx.addIssue({ code: "custom", message: "expected host:port", input: value });
      return z.NEVER;
    }
    const why = refusedHost(host);
    if (why !== undefined) {
      ctx.addIssue({ code: "custom", message: `not allowed: ${why}`, input: value, params: { code: "URL_NOT_ALLOWED" } });
      return z.NEVER;
    }
    return `${host}${value.slice(value.lastIndexOf(":"))}`;
  });

/**
 * The replica's own secret (base64url, 22-256 characters): it proves the replica is the one that
 * registered the id (re-registration, heartbeats, unregister) and the gateway shows it to the
 * replica's frame endpoint. Absent at registration: the API server issues one.
 */
const SECRET_RULE = "expected 22-256 characters of [A-Za-z0-9_-]";
const replicaSecret = z
  .string(SECRET_RULE)
  .regex(/^[\w-]{22,256}$/, SECRET_RULE)
  .optional();

/**
 * An operator drained the replica (the management API told it): it stays registered, out of
 * rotation. The replica carries it, so every API server it registers with agrees. Absent: this
 * API server keeps what it had (the seed's bodies say nothing of it).
 */
const draining = z.boolean("expected true or false").optional();

/**
 * When the replica's drain state last changed (its clock, ms; strictly increasing within a
 * replica, and a restarted replica starts above its predecessor's): a `draining` older than the one
 * an API server holds — a heartbeat sent before the change, arriving after it — is ignored.
 */
const drainSeq = z.number("expected a number").int("expected an integer").min(0).max(Number.MAX_SAFE_INTEGER).optional();

/** Free-form labels: kept when they are strings (cut to 128 characters), ignored otherwise. */
const label = z
  .unknown()
  .transform((v) => (typeof v === "string" ? v.slice(0, 128) : undefined))
  .optional();

/** A list of states must say one state per capability. */
function statesMatch(body: { capabilities?: unknown[] | undefined; states?: unknown[] | undefined }, ctx: z.RefinementCtx): void {
  const n = body.capabilities?.length;
  if (body.states !== undefined && n !== undefined && body.states.length !== n) {
    ctx.addIssue({
      code: "custom",
      path: ["states"],
      message: `expected a list of ${n} states (warm, cold, failed), got ${body.states.length}`,
    });
  }
}

const body = { error: "expected a JSON object" };

/**
 * How the gateway talks to the replica: `anyserve` (frames on its `http_endpoint`), or — for any
 * Open Inference Protocol v2 server (the seed's replicas, Triton, KServe, MLServer) — `oip-grpc`
 * (`inference.GRPCInferenceService` at `endpoint`) or `oip-rest` (the REST routes at
 * `http_endpoint`). Absent: `anyserve` when an `http_endpoint` is given, else `oip-grpc` (the
 * seed's registration body).
 */
const protocol = z.enum(["anyserve", "oip-grpc", "oip-rest"], "expected anyserve, oip-grpc or oip-rest").optional();

/** What a registration must say for the gateway to reach the replica the way its protocol needs. */
function reachable(
  r: { endpoint?: string | undefined; http_endpoint?: string | undefined; protocol?: string | undefined; capabilities?: unknown[] },
  ctx: z.RefinementCtx,
): void {
  const kind = protocolOf(r);
  if (kind === "oip-rest" && r.http_endpoint === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["http_endpoint"],
      message: "expected the OIP REST server's http(s)://host:port (protocol oip-rest), got nothing",
    });
  }
  if (r.endpoint === undefined && kind !== "oip-rest") {
    ctx.addIssue({ code: "custom", path: ["endpoint"], message: "expected host:port, got nothing" });
  }
  // The gateway names the model an OIP server expects from the capability it routed by.
  if (kind !== "anyserve") {
    (r.capabilities ?? []).forEach((c, i) => {
      const cap = c as Record<string, string>;
      if (cap.model === undefined && cap.type === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["capabilities", i],
          message: `: expected a 'model' (or 'type') key naming the model the ${kind} server serves, got ${JSON.stringify(cap).slice(0, 64)}`,
          params: { complete: true },
        });
      }
    });
  }
}

function protocolOf(r: { http_endpoint?: string | undefined; protocol?: string | undefined }): "anyserve" | "oip-grpc" | "oip-rest" {
  if (r.protocol === "oip-grpc" || r.protocol === "oip-rest" || r.protocol === "anyserve") return r.protocol;
  return r.http_endpoint === undefined ? "oip-grpc" : "anyserve";
}

/** `POST /register` and a route table row. */
export const registrationSchema = z
  .object(
    {
      replica_id: replicaId,
      // Optional: an OIP REST server registers its http_endpoint only.
      endpoint: endpoint.optional(),
      capabilities,
      states: states.optional(),
      heartbeat_interval_ms: heartbeatInterval,
      http_endpoint: httpEndpoint,
      protocol,
      service: label,
      node: label,
      replica_secret: replicaSecret,
      draining,
      drain_seq: drainSeq,
    },
    body,
  )
  .superRefine(statesMatch)
  .superRefine(reachable);

/** `POST /heartbeat`: the id, the capabilities when they changed, and whether it is drained. */
export const heartbeatSchema = z
  .object(
    {
      replica_id: replicaId,
      capabilities: capabilities.optional(),
      states: states.optional(),
      replica_secret: replicaSecret,
      draining,
      drain_seq: drainSeq,
    },
    body,
  )
  .superRefine(statesMatch);

/** `DELETE /unregister`. */
export const unregisterSchema = z.object({ replica_id: replicaId, replica_secret: replicaSecret }, body);

/** Parses `value` with `schema`, or throws the one error for all its problems. */
function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues;
  const code = issues.map((i) => (i.code === "custom" ? (i.params?.code as ErrorCode | undefined) : undefined)).find(Boolean);
  const text = issues.slice(0, MAX_REPORTED).map(describeIssue);
  if (issues.length > MAX_REPORTED) text.push(`and ${issues.length - MAX_REPORTED} more`);
  throw new AnyServeError(code ?? "INVALID_REGISTRATION", text.join("; "));
}

/** `capabilities[2].type: expected …, got …` */
function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.reduce<string>(
    (at, key) => (typeof key === "number" ? `${at}[${key}]` : at ? `${at}.${String(key)}` : String(key)),
    "",
  );
  // Messages from the capability rules already say what they got, and where within the capability.
  if (issue.code === "custom" && issue.params?.complete) return `${path}${issue.message}`;
  const input = (issue as { input?: unknown }).input;
  return `${path || "body"}: ${issue.message}${issue.message.includes(", got ") ? "" : `, got ${describeValue(input)}`}`;
}

function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  return JSON.stringify(value ?? null)?.slice(0, 64) ?? typeof value;
}

function registeredCapabilities(caps: Record<string, string>[], given: CapabilityState[] | undefined): RegisteredCapability[] {
  return caps.map((capability, i) => ({ capability, state: given?.[i] ?? "warm" }));
}

/** A registration body (or route table row) as the registry takes it; `defaultHeartbeatMs` when it names no interval. */
export function parseRegistration(body: unknown, defaultHeartbeatMs: number): ReplicaRegistration {
  const r = parse(registrationSchema, body);
  const kind = protocolOf(r);
  const reg: ReplicaRegistration = {
    replicaId: r.replica_id,
    // An oip-rest registration may leave out `endpoint`: its REST URL's host:port stands for it.
    endpoint: r.endpoint ?? new URL(r.http_endpoint!).host,
    capabilities: registeredCapabilities(r.capabilities, r.states),
    heartbeatIntervalMs: r.heartbeat_interval_ms ?? defaultHeartbeatMs,
  };
  if (r.http_endpoint !== undefined) reg.httpEndpoint = r.http_endpoint;
  if (kind !== "anyserve") reg.protocol = kind;
  if (r.service !== undefined) reg.service = r.service;
  if (r.node !== undefined) reg.node = r.node;
  if (r.replica_secret !== undefined) reg.secret = r.replica_secret;
  if (r.draining !== undefined) reg.draining = r.draining;
  if (r.drain_seq !== undefined) reg.drainSeq = r.drain_seq;
  return reg;
}

/** A heartbeat body: the replica's id (and secret), its capabilities when they changed, whether it is drained. */
export function parseHeartbeat(body: unknown): HeartbeatUpdate {
  const h = parse(heartbeatSchema, body);
  return {
    replicaId: h.replica_id,
    ...(h.replica_secret !== undefined ? { secret: h.replica_secret } : {}),
    ...(h.draining !== undefined ? { draining: h.draining } : {}),
    ...(h.drain_seq !== undefined ? { drainSeq: h.drain_seq } : {}),
    ...(h.capabilities !== undefined ? { capabilities: registeredCapabilities(h.capabilities, h.states) } : {}),
  };
}

/** What a heartbeat says. */
export interface HeartbeatUpdate {
  replicaId: string;
  secret?: string;
  capabilities?: RegisteredCapability[];
  draining?: boolean;
  drainSeq?: number;
}

/** An unregister body's replica id (and secret). */
export function parseUnregister(body: unknown): { replicaId: string; secret?: string } {
  const u = parse(unregisterSchema, body);
  return u.replica_secret === undefined ? { replicaId: u.replica_id } : { replicaId: u.replica_id, secret: u.replica_secret };
}
