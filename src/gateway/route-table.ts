/**
 * The route table for clients that call replicas directly (docs/routing.md, "Direct path"):
 * `GET /routes` answers every registered replica with what the gateway itself decides by —
 * capabilities and their states, endpoints, draining, health, the service's balancing strategy
 * and failover switch — under a `version` that grows with every change. `GET /routes/watch` is a
 * server-sent event stream: the whole table at once, then again after every change (changes in
 * one event-loop turn are sent once). Both reveal endpoints, so both need the read scope (the read
 * or the control-plane token, access.ts) when a token is configured.
 *
 * Every event is the whole table, so a watcher that is not reading needs only the latest one: while
 * its socket is full nothing more is queued for it, and when it drains it gets the table as it is
 * then. Its memory here is one table and the socket's buffers, however often the table changes
 * (`write_timeout` cuts a watcher that takes nothing at all).
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { sendJson } from "../util/http.js";
import type { RouteHandler } from "../util/http.js";
import type { Access } from "./access.js";
import { replicaJson } from "./control.js";
import type { ServicePolicies } from "./policies.js";
import type { Registry } from "../routing/registry.js";

export interface RouteTableOptions {
  registry: Registry;
  policies: ServicePolicies;
  access: Access;
  /** A comment line on every watch stream this often, so idle proxies keep it and clients see it alive (ms). */
  pingIntervalMs?: number;
}

/** What `GET /routes` answers and each watch event carries. */
export interface RouteTableJson {
  version: number;
  replicas: (Record<string, unknown> & { load_balancing: string; failover: boolean })[];
}

/** How often open watch streams are checked for a server that stopped listening (ms). */
const SWEEP_MS = 100;
const PING = Buffer.from(": ping\n\n");

export class RouteTable {
  readonly #o: RouteTableOptions;
  readonly #watchers = new Set<ServerResponse>();
  /** Watchers whose socket is full: they get the latest table on 'drain', nothing before. */
  readonly #behind = new Set<ServerResponse>();
  #version = 1;
  /** The policies as last published: a changed strategy or failover switch is a new version. */
  #policies = "";
  #scheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #lastPing = 0;

  constructor(o: RouteTableOptions) {
    this.#o = o;
    o.registry.onRoutingChange(() => {
      this.#version++;
      this.#schedule();
    });
  }

  /** `GET /routes` and `GET /routes/watch`. */
  routes(): Record<string, RouteHandler> {
    return {
      "GET /routes": (req, res) => {
        this.#o.access.read(req, "GET /routes");
        sendJson(res, 200, this.snapshot());
      },
      "GET /routes/watch": (req, res) => this.#watch(req, res),
    };
  }

  /** The table now. */
  snapshot(): RouteTableJson {
    const { registry, policies } = this.#o;
    const described = JSON.stringify(policies.describe());
    if (described !== this.#policies) {
      if (this.#policies !== "") this.#version++;
      this.#policies = described;
    }
    const replicas = registry.list().map((e) => {
      const policy = policies.of(e);
      return { ...replicaJson(e), load_balancing: policy.balancer.name, failover: policy.failover };
    });
    return { version: this.#version, replicas };
  }

  /** Open watch streams. */
  get watchers(): number {
    return this.#watchers.size;
  }

  #watch(req: IncomingMessage, res: ServerResponse): void {
    this.#o.access.read(req, "GET /routes/watch");
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" });
    res.write(event(this.snapshot()));
    this.#watchers.add(res);
    res.once("close", () => {
      this.#watchers.delete(res);
      this.#behind.delete(res);
      if (this.#watchers.size === 0) this.#stopTimer();
    });
    if (this.#timer === undefined) {
      this.#lastPing = Date.now();
      this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
      this.#timer.unref();
    }
  }

  /** Sends the table to every watcher once, after the changes of this turn. */
  #schedule(): void {
    if (this.#scheduled || this.#watchers.size === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#publish();
    });
  }

  #publish(): void {
    if (this.#watchers.size === 0) return;
    const data = event(this.snapshot());
    for (const res of this.#watchers) this.#send(res, data);
  }

  /** Writes to one watcher, unless its socket is full: then it gets the table as it is once it drains. */
  #send(res: ServerResponse, data: string | Buffer): void {
    if (res.writableEnded || this.#behind.has(res)) return;
    if (!res.writableNeedDrain) {
      res.write(data);
      return;
    }
    this.#behind.add(res);
    res.once("drain", () => {
      if (!this.#behind.delete(res)) return; // closed meanwhile
      this.#send(res, event(this.snapshot()));
    });
  }

  /**
   * A watch stream is a request that never ends, so a closing server would wait for it: end them
   * once the server stopped listening. Also pings, and publishes a policy change (policies have no
   * change hook; `anyserve apply` sets them).
   */
  #sweep(): void {
    const now = Date.now();
    for (const res of this.#watchers) {
      const socket = res.socket as (Socket & { server?: Server }) | null;
      // Ended and closed: a kept-alive idle socket would still hold the closing server for seconds.
      if (socket?.server !== undefined && !socket.server.listening) {
        // Out of the set now: writing to an ended response is an error event nobody handles.
        this.#watchers.delete(res);
        res.end(() => socket.destroy());
      }
    }
    if (this.#watchers.size === 0) {
      this.#stopTimer();
      return;
    }
    if (now - this.#lastPing < (this.#o.pingIntervalMs ?? 15_000)) return;
    this.#lastPing = now;
    const version = this.#version;
    const data = event(this.snapshot());
    for (const res of this.#watchers) this.#send(res, this.#version !== version ? data : PING);
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function event(table: RouteTableJson): string {
  return `event: routes\ndata: ${JSON.stringify(table)}\n\n`;
}
