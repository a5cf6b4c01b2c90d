/**
 * The deployment controller's routes on the API server (under `anyserve up`): see what is
 * deployed (the read scope), apply a changed deployment file, scale a service (the control-plane
 * token), when a token is configured (gateway/access.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AnyServeError } from "../errors.js";
import { readBody, readJson, sendJson } from "../util/http.js";
import type { RouteHandler } from "../util/http.js";
import type { Access } from "../gateway/access.js";
import type { DeploymentController } from "./controller.js";
import { ConfigError, parseDeployment } from "./load.js";
import { PlacementError } from "./placement.js";

/** `controller` is a getter: the API server (and so these routes) exists before the controller that needs its URL. */
export function deploymentRoutes(controller: () => DeploymentController, access: Access): Record<string, RouteHandler> {
  const guarded =
    (what: string, fn: (req: IncomingMessage, res: ServerResponse) => Promise<void>): RouteHandler =>
    (req, res) => {
      access.control(req, what);
      return fn(req, res).catch((err: unknown) => {
        throw toHttpError(err);
      });
    };
  return {
    "GET /api/deployment": access.guardRead("GET /api/deployment", (_q, res) => sendJson(res, 200, controller().status())),
    "POST /api/apply": guarded("POST /api/apply", async (req, res) => {
      const text = (await readBody(req, 1 << 20)).toString("utf8");
      const report = await controller().apply(parseDeployment(text, "the applied deployment"));
      sendJson(res, 200, { success: true, services: report });
    }),
    "POST /api/scale": guarded("POST /api/scale", async (req, res) => {
      const body = (await readJson(req)) as { service?: unknown; replicas?: unknown };
      if (
        typeof body.service !== "string" ||
        typeof body.replicas !== "number" ||
        !Number.isInteger(body.replicas) ||
        body.replicas < 0 ||
        body.replicas > 1000
      ) {
        throw new AnyServeError(
          "CONFIG_INVALID",
          `expected {"service": name, "replicas": 0-1000}, got ${JSON.stringify(body).slice(0, 200)}`,
        );
      }
      const report = await controller().scale(body.service, body.replicas);
      sendJson(res, 200, { success: true, services: report });
    }),
  };
}

function toHttpError(err: unknown): unknown {
  if (err instanceof ConfigError) return new AnyServeError("CONFIG_INVALID", err.message, { issues: err.issues });
  if (err instanceof PlacementError) return new AnyServeError("DEPLOYMENT_DOES_NOT_FIT", err.message, { problems: err.problems });
  if (err instanceof Error && /^no service/.test(err.message)) return new AnyServeError("CONFIG_INVALID", err.message);
  return err;
}
