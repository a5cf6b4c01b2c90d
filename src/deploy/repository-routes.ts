/**
 * The OIP model-repository extension on the API server of a deployment with a `repository:`
 * (`anyserve serve DIR`, or `repository:` in the file): the index, and load/unload of one model,
 * which the controller carries out like an applied deployment (docs/models.md).
 *
 * - `GET|POST /v2/repository/index` (read scope): every model version on disk with its state
 *   (`READY`, `LOADING`, `UNAVAILABLE` and why), `{"ready": true}` for the ready ones only.
 * - `POST /v2/repository/models/{m}/load` (control-plane token): reads the model's folder again
 *   and serves what its version policy names now. The new version is checked first (each
 *   `model.onnx` read, each app loaded, in a child process as `up` does): a model that does not
 *   load is refused (400) and the version already serving keeps serving. Answers once the new
 *   version's replicas are ready (or 503 after the deadline).
 * - `POST /v2/repository/models/{m}/unload` (control-plane token): stops the model's replicas —
 *   their processes exit, so the sessions' memory goes back to the machine.
 */
import path from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { AnyServeError } from "../errors.js";
import type { Access } from "../gateway/access.js";
import {
  modelOfService,
  modelServices,
  readRepositoryModel,
  scanRepository,
  versionService,
  type RepositoryModel,
} from "../models/repository.js";
import type { DeploymentFile } from "../config/schema.js";
import { sendJson, type RouteHandler } from "../util/http.js";
import { readBody } from "../util/request-body.js";
import { checkApps } from "./check-apps.js";
import type { DeploymentController } from "./controller.js";
import { ConfigError, parseDeployment } from "./load.js";

export interface RepositoryRoutesOptions {
  /** The repository's folder (absolute). */
  root: string;
  controller: () => DeploymentController;
  /** The deployment being served, and its replacement after a load/unload. */
  current: () => DeploymentFile;
  replace: (next: DeploymentFile) => void;
  access: Access;
  /** How long a load waits for the new replicas to be ready. */
  loadTimeoutMs?: number;
}

interface IndexEntry {
  name: string;
  version?: string;
  state: "READY" | "LOADING" | "UNAVAILABLE";
  reason?: string;
}

export function repositoryRoutes(o: RepositoryRoutesOptions): Record<string, RouteHandler> {
  const index = async (req: IncomingMessage, res: ServerResponse) => {
    o.access.read(req, "POST /v2/repository/index");
    const raw = req.method === "POST" ? (await readBody(req, 1 << 16)).toString("utf8").trim() : "";
    let readyOnly = false;
    if (raw !== "") {
      try {
        readyOnly = (JSON.parse(raw) as { ready?: unknown }).ready === true;
      } catch (err) {
        throw new AnyServeError("INVALID_JSON", `the index request is not JSON: ${(err as Error).message}`);
      }
    }
    const entries = repositoryIndex(o);
    sendJson(res, 200, readyOnly ? entries.filter((e) => e.state === "READY") : entries);
  };
  return {
    "GET /v2/repository/index": index,
    "POST /v2/repository/index": index,
    "POST /v2/repository/models/*": async (req, res) => {
      const m = /^\/v2\/repository\/models\/([^/]+)\/(load|unload)$/.exec((req.url ?? "").split("?")[0]!);
      if (!m) throw new AnyServeError("ROUTE_NOT_FOUND", `no route POST ${(req.url ?? "").slice(0, 200)}`);
      // The token first: nothing about the path is answered to a caller without it.
      o.access.control(req, `POST /v2/repository/models/{m}/${m[2]}`);
      const name = modelName(m[1]!);
      await readBody(req, 1 << 16); // parameters are accepted and not used
      if (m[2] === "load") await load(o, name);
      else await unload(o, name);
      sendJson(res, 200, {});
    },
  };
}

/** A model folder's name from its URL-encoded path segment; INVALID_REQUEST for anything that could leave the repository. */
function modelName(raw: string): string {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw new AnyServeError("INVALID_REQUEST", `model name '${raw.slice(0, 64)}' is not valid percent-encoding`);
  }
  if (name === "" || name.startsWith(".") || name.includes("/") || name.includes("\\"))
    throw new AnyServeError(
      "INVALID_REQUEST",
      `'${name.slice(0, 64)}' is not a model name: expected a folder of the repository (no '/', '\\' or leading '.')`,
    );
  return name;
}

function servicesOf(current: DeploymentFile, name: string): string[] {
  return Object.keys(current.services).filter((s) => modelOfService([name], s) === name);
}

function repositoryIndex(o: RepositoryRoutesOptions): IndexEntry[] {
  const status = o.controller().status().services;
  const stateOf = (service: string): Pick<IndexEntry, "state" | "reason"> => {
    const s = status[service];
    if (!s) return { state: "UNAVAILABLE", reason: "unloaded" };
    if (s.placement === "unschedulable") return { state: "UNAVAILABLE", reason: s.reason ?? "unschedulable" };
    return s.replicas.length > 0 && s.replicas.every((r) => r.state === "running") ? { state: "READY" } : { state: "LOADING" };
  };
  const out: IndexEntry[] = [];
  let models: RepositoryModel[] = [];
  try {
    models = scanRepository(o.root);
  } catch (err) {
    throw new AnyServeError("CONFIG_INVALID", (err as Error).message);
  }
  for (const m of models) {
    for (const v of m.versions) {
      const st = stateOf(versionService(m.name, v));
      out.push({
        name: m.name,
        version: v,
        ...(st.state === "UNAVAILABLE" && !m.served.includes(v) ? { state: "UNAVAILABLE", reason: "not in the version policy" } : st),
      });
    }
    if (m.app) out.push({ name: m.name, ...stateOf(m.name) });
  }
  return out;
}

async function load(o: RepositoryRoutesOptions, name: string): Promise<void> {
  const model = readRepositoryModel(o.root, name);
  // The model's services as the repository describes them now, validated like a deployment file.
  const current = o.current();
  const fresh = parseDeployment({ services: modelServices(o.root, model) }, `model '${name}'`).services;
  // Replicas of the deployment share its object store.
  const store = Object.values(current.services)[0]?.object_store;
  for (const s of Object.values(fresh)) if (store) s.object_store = structuredClone(store);
  // Check the new version loads before touching what serves: a broken model leaves the old one serving.
  try {
    await checkApps({ ...current, services: fresh }, path.join(o.root, name));
  } catch (err) {
    if (err instanceof ConfigError) throw new AnyServeError("CONFIG_INVALID", `model '${name}' cannot be loaded: ${err.message}`);
    throw err;
  }
  const next: DeploymentFile = structuredClone(current);
  for (const s of servicesOf(current, name)) delete next.services[s];
  Object.assign(next.services, fresh);
  // Its services are replaced even when their config is the same: a model.py/model.ts that changed
  // on disk is the same `app:` path (a version folder is a new service name, an app is not).
  await o.controller().apply(next, { restart: Object.keys(fresh) });
  o.replace(next);
  await waitReady(o, Object.keys(fresh), model, o.loadTimeoutMs ?? 60_000);
}

async function unload(o: RepositoryRoutesOptions, name: string): Promise<void> {
  const current = o.current();
  const services = servicesOf(current, name);
  if (services.length === 0) throw new AnyServeError("MODEL_NOT_FOUND", `model '${name}' is not loaded`);
  const next: DeploymentFile = structuredClone(current);
  for (const s of services) delete next.services[s];
  await o.controller().apply(next);
  o.replace(next);
}

async function waitReady(o: RepositoryRoutesOptions, services: string[], model: RepositoryModel, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const status = o.controller().status().services;
    const ready = services.every((s) => {
      const st = status[s];
      return st !== undefined && st.replicas.length > 0 && st.replicas.every((r) => r.state === "running");
    });
    if (ready) return;
    if (Date.now() > end)
      throw new AnyServeError(
        "NO_READY_REPLICA",
        `model '${model.name}' did not become ready within ${timeoutMs / 1000} s (see /api/deployment)`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}
