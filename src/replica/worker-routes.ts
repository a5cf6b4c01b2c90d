/**
 * The replica's worker-management routes (seed scenario 4):
 *
 * - `GET /workers` — per capability: state (cold, starting, warm, stopping, failed, with the
 *   reason), strategy, the workers serving it by state, queued and in-flight requests; and the
 *   replica's workers as a whole (`workers`: the capabilities of a worker strategy share them).
 * - `POST /workers/start`, `POST /workers/stop` with `{"capability": {"type": "heavy"}}` — start or
 *   stop the workers of every capability matching it (a failed capability gets fresh attempts).
 *
 * With a control-plane token configured, all three need `Authorization: Bearer <token>`, or the
 * replica's own secret (what the API server's management API shows: never the token).
 */
import { AnyServeError } from "../errors.js";
import { sendJson } from "../util/http.js";
import { readJson } from "../util/request-body.js";
import type { RouteHandler } from "../util/http.js";
import type { CapabilityMap } from "../protocol/capability.js";
import type { ReplicaGuard } from "./guard.js";

export interface WorkerControl {
  workers(): Record<string, unknown>[];
  workerSummary(): object;
  manage(query: CapabilityMap, action: "start" | "stop"): Promise<Record<string, unknown>[]>;
}

export function workerRoutes(control: WorkerControl, guard: ReplicaGuard): Record<string, RouteHandler> {
  const manage =
    (action: "start" | "stop"): RouteHandler =>
    async (req, res) => {
      guard.control(req, `POST /workers/${action}`);
      const body = await readJson(req);
      const cap =
        body !== null && typeof body === "object" && !Array.isArray(body) ? (body as { capability?: unknown }).capability : undefined;
      if (cap === null || typeof cap !== "object" || Array.isArray(cap)) {
        throw new AnyServeError(
          "INVALID_REQUEST",
          `body: expected {"capability": {key: value, ...}}, got ${JSON.stringify(body)?.slice(0, 100)}`,
        );
      }
      const capabilities = await control.manage(cap as CapabilityMap, action);
      sendJson(res, 200, { success: true, capabilities });
    };
  return {
    "GET /workers": (req, res) => {
      guard.control(req, "GET /workers");
      sendJson(res, 200, { capabilities: control.workers(), workers: control.workerSummary() });
    },
    "POST /workers/start": manage("start"),
    "POST /workers/stop": manage("stop"),
  };
}
