/**
 * The deployment controller's routes on the API server: under `anyserve up` see what is deployed
 * (the read scope), apply a changed deployment file, scale a service (the control-plane token),
 * when a token is configured (gateway/access.ts). On Kubernetes, scale patches the service's
 * Deployment ({@link kubernetesRoutes}); an API server started by hand has no controller and
 * answers NO_CONTROLLER ({@link noControllerRoutes}).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AnyServeError } from "../errors.js";
import { sendJson } from "../util/http.js";
import { readBody, readJson } from "../util/request-body.js";
import type { RouteHandler } from "../util/http.js";
import type { Access } from "../gateway/access.js";
import type { DeploymentController } from "./controller.js";
import { ConfigError, parseDeployment } from "./load.js";
import { PlacementError } from "./placement.js";
import { SECTION_SCHEMAS } from "../config/schema.js";

/** Who carries out `POST /api/scale`: `up`'s controller, or Kubernetes (kubernetes/scale.ts). */
export interface Scaler {
  /** Sets `service`'s replica count; rejects for an unknown or autoscaled service (CONFIG_INVALID). */
  scale(service: string, replicas: number): Promise<Record<string, unknown>>;
}

/** `controller` is a getter: the API server (and so these routes) exists before the controller that needs its URL. */
export function deploymentRoutes(controller: () => DeploymentController, access: Access): Record<string, RouteHandler> {
  const guarded = guard(access);
  return {
    "GET /api/deployment": access.guardRead("GET /api/deployment", (_q, res) => sendJson(res, 200, controller().status())),
    "POST /api/apply": guarded("POST /api/apply", async (req, res) => {
      const text = (await readBody(req, 1 << 20)).toString("utf8");
      const report = await controller().apply(parseDeployment(text, "the applied deployment"));
      sendJson(res, 200, { success: true, services: report });
    }),
    ...scaleRoute(controller, access),
  };
}

/**
 * An API server in a Kubernetes cluster rendered by `anyserve k8s render`: Kubernetes is the
 * controller. Scale patches the service's Deployment (kubernetes/scale.ts); apply is
 * `anyserve k8s apply`, not a route.
 */
export function kubernetesRoutes(scaler: Scaler, access: Access): Record<string, RouteHandler> {
  return {
    ...scaleRoute(() => scaler, access),
    "POST /api/apply": noController(
      access,
      "POST /api/apply",
      "on Kubernetes the manifests are applied with `anyserve k8s apply FILE` (or kubectl)",
    ),
  };
}

/** An API server started by hand (`anyserve api-server`): no controller runs here; scale and apply say so. */
export function noControllerRoutes(access: Access): Record<string, RouteHandler> {
  const what =
    "nothing here starts or stops replicas: run the deployment with `anyserve up FILE` (scale and apply go to its API server), or on Kubernetes (`anyserve k8s apply FILE`), or start and stop `anyserve start` replicas yourself";
  return {
    "POST /api/scale": noController(access, "POST /api/scale", what),
    "POST /api/apply": noController(access, "POST /api/apply", what),
  };
}

const guard =
  (access: Access) =>
  (what: string, fn: (req: IncomingMessage, res: ServerResponse) => Promise<void>): RouteHandler =>
  (req, res) => {
    access.control(req, what);
    return fn(req, res).catch((err: unknown) => {
      throw toHttpError(err);
    });
  };

function noController(access: Access, route: string, what: string): RouteHandler {
  return guard(access)(route, () => {
    throw new AnyServeError("NO_CONTROLLER", `${route}: this API server runs no deployment controller; ${what}`);
  });
}

/** `POST /api/scale {service, replicas}`: replicas within the deployment file's bounds for `deployment.replicas`. */
function scaleRoute(scaler: () => Scaler, access: Access): Record<string, RouteHandler> {
  return {
    "POST /api/scale": guard(access)("POST /api/scale", async (req, res) => {
      const body = (await readJson(req)) as { service?: unknown; replicas?: unknown } | null;
      const replicas = REPLICAS.safeParse(body?.replicas);
      if (typeof body?.service !== "string" || body.replicas === undefined || !replicas.success) {
        throw new AnyServeError(
          "CONFIG_INVALID",
          `expected {"service": name, "replicas": an integer from ${REPLICAS.minValue} to ${REPLICAS.maxValue}}, got ${JSON.stringify(body).slice(0, 200)}`,
        );
      }
      const report = await scaler().scale(body.service, replicas.data);
      sendJson(res, 200, { success: true, services: report });
    }),
  };
}

/** `deployment.replicas` as the config schema bounds it (its default aside: a scale names a count). */
const REPLICAS = SECTION_SCHEMAS.deployment.shape.replicas.unwrap();

function toHttpError(err: unknown): unknown {
  if (err instanceof ConfigError) return new AnyServeError("CONFIG_INVALID", err.message, { issues: err.issues });
  if (err instanceof PlacementError) return new AnyServeError("DEPLOYMENT_DOES_NOT_FIT", err.message, { problems: err.problems });
  if (err instanceof Error && /^no service/.test(err.message)) return new AnyServeError("CONFIG_INVALID", err.message);
  return err;
}
