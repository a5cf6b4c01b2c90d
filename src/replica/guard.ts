/**
 * Who may call what on a replica (docs/security.md):
 *
 * - **Its frame endpoint** (`/_anyserve/frames`): the gateway, showing the replica's own secret
 *   (it registered with it; the API server never shows replicas the control-plane token) — only
 *   this connection's delegation state counts; or another caller (`direct` SDK clients,
 *   `ctx.call` from other replicas) showing the inference token or the deployment's peer key
 *   (derived from the control-plane token). A replica with neither token takes any caller.
 * - **Its management routes** (`/workers`, `/config`): the control-plane token (an operator) or
 *   the replica's own secret (the API server's management API), when a token is configured.
 * - **Its inference routes** (REST, gRPC): the inference token, when one is configured. Delegation
 *   headers sent to a replica are never read: delegation is the API server's business.
 *
 * @example
 * ```ts
 * const guard = new ReplicaGuard({ secret: newSecret(), token: "c" });
 * guard.framePeer("Bearer " + secret); // "trusted"
 * guard.framePeer("Bearer c");         // undefined: the control-plane token is not a frame credential
 * ```
 */
import type { IncomingMessage } from "node:http";
import { bearerOf, type DataPlaneAuth, dataPlaneAuth, peerKeyOf, secretMatches, TokenSet, unauthenticated } from "../util/auth.js";
import type { FramePeer } from "../transport/frame-server.js";

export interface ReplicaGuardOptions {
  /** The replica's own secret (it registers with it). */
  secret: string;
  /** The deployment's control-plane token, if any. */
  token?: string | undefined;
  /** The deployment's inference token, if any. */
  inferenceToken?: string | undefined;
}

export class ReplicaGuard {
  readonly #secret: string;
  readonly #control: TokenSet | undefined;
  readonly #callers: TokenSet | undefined;
  readonly dataPlane: DataPlaneAuth;

  constructor(o: ReplicaGuardOptions) {
    this.#secret = o.secret;
    this.#control = o.token ? new TokenSet([o.token, o.secret]) : undefined;
    const callers = [o.inferenceToken, o.token ? peerKeyOf(o.token) : undefined];
    this.#callers = callers.some(Boolean) ? new TokenSet(callers) : undefined;
    this.dataPlane = dataPlaneAuth({ inferenceToken: o.inferenceToken });
  }

  /** Who opened a frame connection, by its `Authorization`; undefined: refused. */
  framePeer(authorization: string | undefined): FramePeer {
    if (secretMatches(bearerOf(authorization), this.#secret)) return "trusted";
    if (this.#callers === undefined || this.#callers.accepts(authorization)) return "client";
    return undefined;
  }

  /** Throws 401 unless the request may manage the replica (the control-plane token or the replica's secret), when a token is configured. */
  control(req: IncomingMessage, what: string): void {
    if (this.#control === undefined || this.#control.accepts(req.headers.authorization)) return;
    throw unauthenticated(what, "control", bearerOf(req.headers.authorization) !== "");
  }
}
