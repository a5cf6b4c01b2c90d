/**
 * The management API on the API server (docs/management.md): status behind the read scope,
 * actions behind the control-plane token, when one is configured (access.ts).
 *
 * | route | what |
 * |---|---|
 * | `GET /api/services`, `GET /api/services/{name}` | per service: config, policy, replicas and health, request stats |
 * | `GET /api/replicas`, `GET /api/nodes`, `GET /api/stats` | replicas, nodes, totals |
 * | `POST /api/replicas/{id}/drain`, `…/undrain` | take a replica out of rotation (it keeps running) / put it back: the replica is told and tells every API server it registers with |
 * | `POST /api/services/{name}/workers` `{action: start\|stop, capability?}` | start or stop the workers of the service's capabilities on every replica |
 *
 * `POST /api/scale` lives with the deployment routes (deploy/routes.ts).
 */
import type { IncomingMessage } from "node:http";
import { Agent, request } from "undici";
import { AnyServeError } from "../errors.js";
import { guardedLookup } from "../util/address.js";
import { sendJson } from "../util/http.js";
import { readJson } from "../util/request-body.js";
import type { RouteHandler } from "../util/http.js";
import { trustedCas } from "../util/tls.js";
import type { Access } from "./access.js";
import type { Registry } from "../routing/registry.js";
import type { StatusModel } from "./status.js";

export interface ManagementOptions {
  status: StatusModel;
  registry: Registry;
  access: Access;
  /** CA bundle trusted for replicas that serve TLS (besides the system's). */
  ca?: Buffer | undefined;
}

export function managementRoutes(o: ManagementOptions): Record<string, RouteHandler> {
  const { status, registry, access } = o;
  // Calls to replicas' /workers: their registered address only (no metadata ranges), their CA.
  let agent: Agent | undefined;
  const replicaAgent = (): Agent => (agent ??= new Agent({ connect: { lookup: guardedLookup, ca: trustedCas(o.ca) } }));
  /**
   * POSTs `body` to a replica's management route, showing the replica's own secret — never the
   * control-plane token: a registered endpoint gets nothing it did not give. Rejects when the
   * replica cannot be reached.
   */
  const callReplica = async (
    url: string,
    body: unknown,
    secret: string | undefined,
    timeoutMs: number,
  ): Promise<{ status: number; body: unknown }> => {
    const x = await request(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(secret ? { authorization: `Bearer ${secret}` } : {}) },
      body: JSON.stringify(body),
      dispatcher: replicaAgent(),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await x.body.text();
    let parsed: unknown = text.slice(0, 500);
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      // Not JSON (not an anyserve replica): kept as text for the message.
    }
    return { status: x.statusCode, body: parsed };
  };
  /**
   * Has replica `id` drain or undrain itself; REPLICA_UNREACHABLE (502) when it cannot be reached or
   * refuses. Resolves with the `drain_seq` it answered (when the change was made), if any.
   */
  const tellReplica = async (
    id: string,
    endpoint: string,
    action: "drain" | "undrain",
    secret: string | undefined,
  ): Promise<number | undefined> => {
    const answer = await callReplica(`${endpoint}/${action}`, {}, secret, DRAIN_CALL_TIMEOUT_MS).catch((err: Error) => {
      throw new AnyServeError(
        "REPLICA_UNREACHABLE",
        `replica '${id}' at ${endpoint} could not be reached to ${action} it: ${err.message}; nothing was changed`,
      );
    });
    if (answer.status !== 200) {
      const said = JSON.stringify(answer.body).slice(0, 200);
      throw new AnyServeError(
        "REPLICA_UNREACHABLE",
        `replica '${id}' at ${endpoint} did not ${action}: expected 200 from POST /${action}, got ${answer.status} ${said}; nothing was changed`,
      );
    }
    const seq = (answer.body as { drain_seq?: unknown } | null)?.drain_seq;
    return Number.isSafeInteger(seq) && (seq as number) >= 0 ? (seq as number) : undefined;
  };
  const fresh =
    (what: string, fn: () => unknown): RouteHandler =>
    async (req, res) => {
      access.read(req, what);
      await status.refresh();
      sendJson(res, 200, fn());
    };
  return {
    "GET /api/services": fresh("GET /api/services", () => ({ time: Date.now(), services: status.services() })),
    "GET /api/replicas": fresh("GET /api/replicas", () => ({ time: Date.now(), replicas: status.replicas() })),
    "GET /api/nodes": fresh("GET /api/nodes", () => ({ nodes: status.nodes() })),
    "GET /api/stats": fresh("GET /api/stats", () => status.stats()),
    "GET /api/services/*": async (req, res) => {
      access.read(req, "GET /api/services/{name}");
      const name = segment(req, "/api/services/", 0);
      await status.refresh();
      sendJson(res, 200, serviceOrThrow(status, name));
    },
    "POST /api/replicas/*": async (req, res) => {
      access.control(req, "POST /api/replicas/{id}/drain");
      const id = segment(req, "/api/replicas/", 0);
      const action = segment(req, "/api/replicas/", 1);
      if (action !== "drain" && action !== "undrain") {
        throw new AnyServeError("ROUTE_NOT_FOUND", `no route POST /api/replicas/${id}/${action}: expected drain or undrain`);
      }
      const entry = registry.get(id);
      if (!entry) throw new AnyServeError("REPLICA_NOT_FOUND", `replica '${id}' is not registered`);
      // An anyserve replica carries the state and tells every API server it registers with; a
      // foreign OIP server cannot, so only this API server's registry knows it drained.
      const carried = entry.protocol === undefined && entry.httpEndpoint !== undefined;
      const drainSeq = carried ? await tellReplica(id, entry.httpEndpoint!, action, entry.secret) : undefined;
      registry.drain(id, action === "drain", drainSeq);
      sendJson(res, 200, {
        success: true,
        replica_id: id,
        draining: action === "drain",
        available: entry.available,
        in_flight: entry.inFlight,
        // In force here now; the replica's other API servers with its next registration or heartbeat.
        scope: carried ? "every API server" : "this API server",
        heartbeat_interval_ms: entry.heartbeatIntervalMs,
      });
    },
    "POST /api/services/*": async (req, res) => {
      access.control(req, "POST /api/services/{name}/workers");
      const name = segment(req, "/api/services/", 0);
      if (segment(req, "/api/services/", 1) !== "workers") {
        throw new AnyServeError("ROUTE_NOT_FOUND", `no route POST ${req.url?.slice(0, 200)}: expected /api/services/{name}/workers`);
      }
      const service = serviceOrThrow(status, name);
      const { action, capability } = workersBody(await readJson(req));
      const replicas = await Promise.all(
        service.replicas
          .filter((r) => r.http_endpoint)
          .map(async (r) => {
            const secret = registry.get(r.replica_id)?.secret;
            const answer = await callReplica(`${r.http_endpoint}/workers/${action}`, { capability }, secret, 60_000).then(
              (x) => x,
              (err: Error) => ({ status: 502, body: { error: err.message } as unknown }),
            );
            return { replica_id: r.replica_id, ...answer };
          }),
      );
      sendJson(res, replicas.every((r) => r.status === 200) ? 200 : 502, { success: replicas.every((r) => r.status === 200), replicas });
    },
  };
}

/** How long a replica gets to answer a drain or undrain (it only flips a flag). */
const DRAIN_CALL_TIMEOUT_MS = 10_000;

function serviceOrThrow(status: StatusModel, name: string): NonNullable<ReturnType<StatusModel["service"]>> {
  const view = status.service(name);
  if (!view) {
    const known = status.serviceNames();
    throw new AnyServeError(
      "SERVICE_NOT_FOUND",
      `no service '${name}': ${known.length ? `known services are ${known.join(", ")}` : "nothing is deployed or registered"}`,
    );
  }
  return view;
}

/** The `index`-th path segment after `prefix`, URL-decoded. */
function segment(req: IncomingMessage, prefix: string, index: number): string {
  const path = (req.url ?? "").split("?")[0]!.slice(prefix.length);
  const raw = path.split("/")[index] ?? "";
  try {
    return decodeURIComponent(raw).slice(0, 128);
  } catch {
    throw new AnyServeError("INVALID_REQUEST", `path segment '${raw.slice(0, 64)}' is not valid percent-encoding`);
  }
}

function workersBody(body: unknown): { action: "start" | "stop"; capability: Record<string, string> } {
  const b = body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  if (b.action !== "start" && b.action !== "stop") {
    throw new AnyServeError("INVALID_REQUEST", `action: expected "start" or "stop", got ${JSON.stringify(b.action ?? null)}`);
  }
  const cap = b.capability ?? {};
  if (cap === null || typeof cap !== "object" || Array.isArray(cap)) {
    throw new AnyServeError(
      "INVALID_REQUEST",
      `capability: expected {key: value, ...} (empty = every capability), got ${JSON.stringify(cap)}`,
    );
  }
  return { action: b.action, capability: cap as Record<string, string> };
}
