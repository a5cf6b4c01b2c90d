/**
 * The direct client's copy of the API server's route table (`GET /routes/watch`, see
 * gateway/route-table.ts). The replicas go into a {@link Registry} of its own, so a query matches
 * exactly the replicas the gateway would match; availability, warm-first and the service's
 * balancing strategy are the gateway's too, on this client's own in-flight counts.
 *
 * The watch stream is opened on first use and reopened with back-off when it drops; meanwhile the
 * last table is used, and the first event of a new stream (the whole table) replaces it. With
 * several API servers the stream is opened on the current one (util/api-servers.ts); a stream
 * that could not connect, broke or ended — its API server died or is stopping — moves on to the
 * next, re-watched there after the shortest back-off.
 */
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { AnyServeError } from "../../errors.js";
import type { CapabilityMap } from "../../protocol/capability.js";
import { createBalancer, type Balancer } from "../../routing/balancers/index.js";
import { preferWarm } from "../../routing/candidates.js";
import { parseRegistration } from "../../routing/registration.js";
import { Registry, type ReplicaEntry, type ReplicaRegistration } from "../../routing/registry.js";
import { errorFromBody } from "../wire.js";
import { readSse } from "../sse-reader.js";
import { trustedCas } from "../../util/tls.js";
import { failoverOf, type ApiServers } from "../../util/api-servers.js";

export interface RouteCacheOptions {
  /** The API servers, and which one is in use. */
  apiServers: ApiServers;
  /** Its read or control-plane token, when it has one. */
  token?: string | undefined;
  /** CA bundle for an `https://` API server, besides the system's. */
  ca?: string | Buffer | undefined;
  /** Told of each replica that left the table or moved to another endpoint. */
  onLeave?: (replicaId: string) => void;
}

/** A replica chosen for a call, and whether its service allows failover. */
export interface DirectRoute {
  entry: ReplicaEntry & { httpEndpoint: string };
  failover: boolean;
}

/** What a client knows of the table, for tests and debugging. */
export interface RouteCacheState {
  /** The table's version (0 until one arrived). */
  version: number;
  /** True while the watch stream is open. */
  connected: boolean;
  replicas: string[];
  /** Why the last watch stream failed or ended, if one did. */
  lastError?: string;
}

/** A watch stream silent this long is dead (the server pings every 15 s). */
const SILENCE_MS = 45_000;
const BACKOFF_MS = [100, 200, 500, 1_000, 2_000, 5_000];
/** Back-off when the API server refuses the table (no token, an older server without /routes). */
const REFUSED_MS = 30_000;

interface Policy {
  balancer: string;
  failover: boolean;
}

export class RouteCache {
  readonly #o: RouteCacheOptions;
  readonly #registry = new Registry();
  readonly #policies = new Map<string, Policy>();
  readonly #balancers = new Map<string, Balancer>();
  /** Replicas not to pick until the given time: a connection to them failed, or they sent GOAWAY. */
  readonly #down = new Map<string, number>();
  #version = 0;
  #connected = false;
  #lastError: string | undefined;
  #started = false;
  #closed = false;
  #request: http.ClientRequest | undefined;
  /** The last watch stream was cut for its silence (its API server hangs, or the link to it). */
  #silent = false;
  #retry: { timer: NodeJS.Timeout; wake: () => void } | undefined;

  constructor(o: RouteCacheOptions) {
    this.#o = o;
  }

  /**
   * The replica to call for `query` (not one of `exclude`), or undefined when the call should go
   * through the API server: no table yet, nothing matches, or nothing that matches is available.
   */
  pick(query: CapabilityMap, affinityKey: string | undefined, exclude?: readonly string[]): DirectRoute | undefined {
    if (!this.#started) this.#start();
    if (this.#version === 0) return undefined;
    let found = this.#registry.lookupAvailable(query, exclude);
    if (this.#down.size > 0) found = found.filter((e) => !this.#isDown(e.replicaId));
    if (found.length === 0) return undefined;
    const policy = this.#policies.get(found[0]!.replicaId) ?? { balancer: "power_of_two", failover: false };
    const entry = this.#balancer(policy.balancer).pick(
      preferWarm(found, query),
      affinityKey === undefined ? undefined : { key: affinityKey },
    );
    // A foreign OIP server has no frame endpoint: the API server calls it in its protocol.
    if (entry.httpEndpoint === undefined || entry.protocol !== undefined) return undefined;
    return { entry: entry as DirectRoute["entry"], failover: policy.failover };
  }

  /** Keeps `replicaId` out of picks for `ms` (or until the table lists it at a new endpoint). */
  markDown(replicaId: string, ms: number): void {
    this.#down.set(replicaId, Date.now() + ms);
  }

  /** The current entry of a replica (entries are replaced when a replica's capabilities change). */
  get(replicaId: string): ReplicaEntry | undefined {
    return this.#registry.get(replicaId);
  }

  state(): RouteCacheState {
    const out: RouteCacheState = {
      version: this.#version,
      connected: this.#connected,
      replicas: this.#registry.list().map((e) => e.replicaId),
    };
    if (this.#lastError !== undefined) out.lastError = this.#lastError;
    return out;
  }

  close(): void {
    this.#closed = true;
    this.#connected = false;
    this.#request?.destroy();
    this.#retry?.wake();
  }

  #isDown(replicaId: string): boolean {
    const until = this.#down.get(replicaId);
    if (until === undefined || until > Date.now()) return until !== undefined;
    this.#down.delete(replicaId);
    return false;
  }

  #balancer(name: string): Balancer {
    let b = this.#balancers.get(name);
    if (b === undefined) {
      try {
        b = createBalancer(name);
      } catch {
        b = createBalancer("power_of_two"); // a strategy this client does not know
      }
      this.#balancers.set(name, b);
    }
    return b;
  }

  #start(): void {
    this.#started = true;
    void this.#run();
  }

  /** Keeps a watch stream open until closed, backing off between attempts. */
  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      let wait: number;
      const at = this.#o.apiServers.current;
      try {
        const tables = await this.#watch(at);
        failures = tables > 0 ? 0 : failures + 1;
        this.#lastError = "the watch stream ended";
        // Ended by its server (stopped, killed): the next API server has the same table.
        if (!this.#closed && this.#o.apiServers.moveFrom(at, "route watch: the stream ended")) failures = 0;
        wait = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)]!;
      } catch (err) {
        const e = AnyServeError.from(err, "REPLICA_UNREACHABLE");
        this.#lastError = `${e.code}: ${e.message}`;
        const refused = e.code === "UNAUTHENTICATED" || e.code === "ROUTE_NOT_FOUND" || e.code === "NO_MATCHING_CAPABILITY";
        const f = this.#closed ? undefined : (failoverOf(err) ?? (this.#silent ? { reason: "silent" } : undefined));
        if (f !== undefined && this.#o.apiServers.moveFrom(at, `route watch: ${f.reason}`)) failures = 0;
        wait = refused ? REFUSED_MS : BACKOFF_MS[Math.min(failures++, BACKOFF_MS.length - 1)]!;
      }
      this.#connected = false;
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait * (0.5 + Math.random() / 2));
        timer.unref();
        this.#retry = {
          timer,
          wake: () => {
            clearTimeout(timer);
            resolve();
          },
        };
      });
      this.#retry = undefined;
    }
  }

  /** One watch stream: resolves with the number of tables it brought when it ends. */
  async #watch(apiServer: string): Promise<number> {
    this.#silent = false;
    const res = await this.#open(apiServer);
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      throw errorFromBody(res.statusCode ?? 500, Buffer.concat(chunks));
    }
    this.#connected = true;
    let tables = 0;
    for await (const data of readSse(res)) {
      this.#apply(JSON.parse(data) as unknown);
      tables++;
    }
    return tables;
  }

  #open(apiServer: string): Promise<IncomingMessage> {
    const url = new URL("/routes/watch", apiServer);
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (this.#o.token) headers.authorization = `Bearer ${this.#o.token}`;
    return new Promise((resolve, reject) => {
      const ca = trustedCas(this.#o.ca);
      const req = (url.protocol === "https:" ? https : http).get(url, { headers, agent: false, ...(ca ? { ca } : {}) }, resolve);
      this.#request = req;
      req.on("error", reject);
      // The stream must not keep a process alive that forgot to close its client.
      req.once("socket", (socket) => socket.unref());
      req.setTimeout(SILENCE_MS, () => {
        this.#silent = true;
        req.destroy(new Error(`no event or ping from the API server in ${SILENCE_MS / 1000} s`));
      });
      if (this.#closed) req.destroy();
    });
  }

  /** Replaces the copy with `json`, a whole table; invalid replicas are left out. */
  #apply(json: unknown): void {
    const table = json as { version?: unknown; replicas?: unknown };
    if (typeof table.version !== "number" || !Array.isArray(table.replicas)) return;
    const seen = new Set<string>();
    for (const row of table.replicas as Record<string, unknown>[]) {
      let reg: ReplicaRegistration;
      try {
        reg = parseRegistration(row, 1_000);
      } catch {
        continue;
      }
      const id = reg.replicaId;
      seen.add(id);
      const prev = this.#registry.get(id);
      if (prev === undefined || describe(prev) !== describe(reg)) {
        if (prev !== undefined && prev.httpEndpoint !== reg.httpEndpoint) this.#left(id);
        this.#registry.register(reg);
      }
      this.#registry.setAvailable(id, row.available !== false);
      this.#registry.setHealthy(id, row.health !== "unhealthy");
      this.#policies.set(id, {
        balancer: typeof row.load_balancing === "string" ? row.load_balancing : "power_of_two",
        failover: row.failover === true,
      });
    }
    for (const e of this.#registry.list()) {
      if (seen.has(e.replicaId)) continue;
      this.#registry.unregister(e.replicaId);
      this.#policies.delete(e.replicaId);
      this.#left(e.replicaId);
    }
    this.#version = table.version;
  }

  #left(replicaId: string): void {
    this.#down.delete(replicaId);
    this.#o.onLeave?.(replicaId);
  }
}

/** What makes a replica's entry: a change re-registers it in the copy. */
function describe(r: ReplicaRegistration): string {
  return JSON.stringify([r.httpEndpoint, r.service, r.capabilities]);
}
