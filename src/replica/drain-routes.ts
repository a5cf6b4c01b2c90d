/**
 * A replica's operator drain (docs/management.md): `POST /drain` takes it out of rotation at every
 * API server, `POST /undrain` puts it back. The replica carries the state and reports `draining`
 * with every registration and heartbeat, so each API server it registers with agrees — not only
 * the one the operator called. A change is sent at once (a fresh registration to every API
 * server); a server that misses it has it with the next heartbeat.
 *
 * Both need the control-plane token or the replica's own secret (what an API server's management
 * API shows it: never the token), when a token is configured. A replica starts undrained unless
 * started with `drained` (`anyserve start --drained`).
 */
import { sendJson } from "../util/http.js";
import type { RouteHandler } from "../util/http.js";
import type { ReplicaGuard } from "./guard.js";

/** The replica's drain state; `changed` sends it to the API servers. */
export interface DrainState {
  draining: boolean;
  /**
   * When `draining` last changed (ms; see {@link nextDrainSeq}), sent with it as `drain_seq`: an API
   * server ignores a drain state older than the one it holds — a heartbeat sent before a change and
   * arriving after it cannot undo the change there.
   */
  seq: number;
  changed(): void;
}

/**
 * The `drain_seq` of a change made now: the clock in ms, and above the last one even if the clock
 * has not moved (or went back). A replica's first state is stamped when it starts, so a restarted
 * replica's state is newer than anything its predecessor sent.
 */
export function nextDrainSeq(last = 0): number {
  return Math.max(Date.now(), last + 1);
}

export function drainRoutes(replicaId: string, state: DrainState, guard: ReplicaGuard): Record<string, RouteHandler> {
  const set =
    (draining: boolean): RouteHandler =>
    (req, res) => {
      guard.control(req, `POST /${draining ? "drain" : "undrain"}`);
      if (state.draining !== draining) {
        state.draining = draining;
        state.seq = nextDrainSeq(state.seq);
        state.changed();
      }
      sendJson(res, 200, { success: true, replica_id: replicaId, draining, drain_seq: state.seq });
    };
  return { "POST /drain": set(true), "POST /undrain": set(false) };
}
