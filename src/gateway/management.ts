/**
 * The management API on the API server (docs/management.md): read-only status for everyone,
 * actions behind the control-plane token when one is configured.
 *
 * | route | what |
 * |---|---|
 * | `GET /api/services`, `GET /api/services/{name}` | per service: config, policy, replicas and health, request stats |
 * | `GET /api/replicas`, `GET /api/nodes`, `GET /api/stats` | replicas, nodes, totals |
 * | `POST /api/replicas/{id}/drain`, `…/undrain` | take a replica out of rotation (it keeps running) / put it back |
 * | `POST /api/services/{name}/workers` `{action: start\|stop, capability?}` | start or stop the workers of the service's capabilities on every replica |
 *
 * `POST /api/scale` lives with the deployment routes (deploy/routes.ts).
 */
import type { IncomingMessage } from "node:http";
import { AnyServeError } from "../errors.js";
import { readJson, sendJson } from "../util/http.js";
import type { RouteHandler } from "../util/http.js";
import { checkToken } from "./control.js";
import type { Registry } from "../routing/registry.js";
import type { StatusModel } from "./status.js";

export interface ManagementOptions {
  status: StatusModel;
  registry: Registry;
  token?: string | undefined;
}

export function managementRoutes(o: ManagementOptions): Record<string, RouteHandler> {
  const { status, registry } = o;
  const fresh =
    (fn: () => unknown): RouteHandler =>
    async (_req, res) => {
      await status.refresh();
      sendJson(res, 200, fn());
    };
  return {
    "GET /api/services": fresh(() => ({ time: Date.now(), services: status.services() })),
    "GET /api/replicas": fresh(() => ({ time: Date.now(), replicas: status.replicas() })),
    "GET /api/nodes": fresh(() => ({ nodes: status.nodes() })),
    "GET /api/stats": fresh(() => status.stats()),
    "GET /api/services/*": async (req, res) => {
      const name = segment(req, "/api/services/", 0);
      await status.refresh();
      sendJson(res, 200, serviceOrThrow(status, name));
    },
    "POST /api/replicas/*": async (req, res) => {
      checkToken(req, o.token);
      const id = segment(req, "/api/replicas/", 0);
      const action = segment(req, "/api/replicas/", 1);
      if (action !== "drain" && action !== "undrain") {
        throw new AnyServeError("ROUTE_NOT_FOUND", `no route POST /api/replicas/${id}/${action}: expected drain or undrain`);
      }
      if (!registry.drain(id, action === "drain")) throw new AnyServeError("REPLICA_NOT_FOUND", `replica '${id}' is not registered`);
      const entry = registry.get(id)!;
      sendJson(res, 200, { success: true, replica_id: id, available: entry.available, in_flight: entry.inFlight });
    },
    "POST /api/services/*": async (req, res) => {
      checkToken(req, o.token);
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
            const answer = await fetch(`${r.http_endpoint}/workers/${action}`, {
              method: "POST",
              headers: { "content-type": "application/json", ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
              body: JSON.stringify({ capability }),
              signal: AbortSignal.timeout(60_000),
            }).then(
              async (x) => ({ status: x.status, body: (await x.json()) as unknown }),
              (err: Error) => ({ status: 502, body: { error: err.message } }),
            );
            return { replica_id: r.replica_id, ...answer };
          }),
      );
      sendJson(res, replicas.every((r) => r.status === 200) ? 200 : 502, { success: replicas.every((r) => r.status === 200), replicas });
    },
  };
}

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
