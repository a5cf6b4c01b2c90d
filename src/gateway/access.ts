/**
 * Who may use which of the API server's routes (docs/security.md). Three optional tokens, each a
 * scope:
 *
 * | scope | token | routes |
 * |---|---|---|
 * | control | `--token` | register, heartbeat, unregister; drain, workers, apply, scale |
 * | read | `--read-token`, or the control token | `/registry`, `/route`, `/routes`, `/api/*` reads, `/metrics` |
 * | inference | `--inference-token` | inference and model routes, REST and gRPC |
 *
 * No control token: the control and read routes are open (a loopback-only API server, or a
 * network you trust). `/health`, `/v2`, `/v2/health/*` and `/dashboard` (a page with no data) are
 * always open.
 *
 * @example
 * ```ts
 * const access = new Access({ token: "c", readToken: "r" });
 * access.read(req, "GET /registry");     // passes with "Bearer c" or "Bearer r", else 401
 * access.control(req, "POST /register"); // passes with "Bearer c"; "Bearer r" is 403
 * ```
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AnyServeError } from "../errors.js";
import { bearerOf, TokenSet, unauthenticated } from "../util/auth.js";
import type { RouteHandler } from "../util/http.js";

export interface AccessOptions {
  /** The control-plane token; none: control and read routes are open. */
  token?: string | undefined;
  /** A token that may read (registry, route table, status, metrics) but not change anything. */
  readToken?: string | undefined;
}

export class Access {
  readonly #control: TokenSet;
  readonly #read: TokenSet;
  readonly #readOnly: TokenSet;
  /** The control-plane token, when one is configured. */
  readonly token: string | undefined;

  constructor(o: AccessOptions = {}) {
    if (o.readToken && !o.token) {
      throw new AnyServeError("CONFIG_INVALID", "a read token needs a control-plane token: without one, every route is open");
    }
    this.token = o.token || undefined;
    this.#control = new TokenSet([o.token]);
    this.#readOnly = new TokenSet([o.readToken]);
    this.#read = new TokenSet([o.token, o.readToken]);
  }

  /** True when no control-plane token is configured: control and read routes are open. */
  get open(): boolean {
    return this.#control.size === 0;
  }

  /** Throws unless the request may change the deployment: 401 without the control token, 403 with the read token. */
  control(req: IncomingMessage, what: string): void {
    if (this.open || this.#control.accepts(req.headers.authorization)) return;
    if (this.#readOnly.accepts(req.headers.authorization)) {
      throw new AnyServeError("PERMISSION_DENIED", `${what} needs the control-plane token: the read token may only read`);
    }
    throw unauthenticated(what, "control", bearerOf(req.headers.authorization) !== "");
  }

  /** Throws 401 unless the request may read the registry and status (the read or the control token). */
  read(req: IncomingMessage, what: string): void {
    if (this.open || this.#read.accepts(req.headers.authorization)) return;
    throw unauthenticated(what, "read", bearerOf(req.headers.authorization) !== "");
  }

  /** `handler` behind {@link control}. */
  guardControl(what: string, handler: (req: IncomingMessage, res: ServerResponse) => unknown): RouteHandler {
    return (req, res) => {
      this.control(req, what);
      return handler(req, res);
    };
  }

  /** `handler` behind {@link read}. */
  guardRead(what: string, handler: (req: IncomingMessage, res: ServerResponse) => unknown): RouteHandler {
    return (req, res) => {
      this.read(req, what);
      return handler(req, res);
    };
  }
}
