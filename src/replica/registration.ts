/**
 * Keeps a replica registered with its API server: registers at start (retrying while the API
 * server is down), heartbeats every interval, and registers again whenever a heartbeat says the
 * registry does not know it (the API server restarted) or the API server was unreachable.
 *
 * After a restart the API server knows nobody until replicas register again, so this does not
 * wait for the next heartbeat: while the API server cannot be reached, attempts follow each other
 * with a short back-off (0.1 s doubling to 2 s, jittered), and {@link RegistrationLoop.reconnect}
 * — called when the gateway's connection to this replica drops — checks at once.
 */
import { Agent, request } from "undici";
import type { Logger } from "../util/log.js";
import { trustedCas } from "../util/tls.js";

export interface RegistrationBody {
  replica_id: string;
  /** The replica's own secret: it proves the id is ours on re-registration, heartbeats and unregister. */
  replica_secret: string;
  endpoint: string;
  http_endpoint: string;
  capabilities: Record<string, string>[];
  states: string[];
  heartbeat_interval_ms: number;
  service?: string;
  node?: string;
  /** Drained by an operator: sent with every registration and heartbeat, so each API server keeps it out of rotation. */
  draining?: boolean;
  /** When `draining` last changed (see drain-routes.ts): an API server ignores an older state than it holds. */
  drain_seq?: number;
}

export class RegistrationLoop {
  readonly #apiServer: string;
  readonly #body: () => RegistrationBody;
  readonly #logger: Logger;
  readonly #headers: Record<string, string>;
  /** For an `https://` API server with a CA of its own. */
  readonly #dispatcher: Agent | undefined;
  #timer: NodeJS.Timeout | undefined;
  #registered = false;
  #stopped = false;
  #busy = false;
  /** The heartbeat/registration in flight, if any. */
  #current: Promise<void> = Promise.resolve();
  /** A refresh arrived while a request was in flight: register once more when it ends. */
  #again = false;
  /** The last attempt could not reach the API server: the next comes after {@link #backoffMs}, not a whole interval. */
  #unreachable = false;
  #backoffMs = 0;
  #reconnectedAt = 0;

  constructor(opts: {
    apiServer: string;
    body: () => RegistrationBody;
    logger: Logger;
    token?: string | undefined;
    ca?: Buffer | string | undefined;
  }) {
    this.#apiServer = opts.apiServer.replace(/\/+$/, "");
    this.#body = opts.body;
    this.#logger = opts.logger;
    this.#headers = { "content-type": "application/json", ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) };
    const ca = trustedCas(opts.ca);
    this.#dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  }

  get registered(): boolean {
    return this.#registered;
  }

  /** Registers now (one attempt) and starts the heartbeat timer. */
  async start(): Promise<void> {
    await this.#tick();
    this.#schedule();
  }

  /**
   * Stops heartbeating and unregisters (best effort, bounded in time). A heartbeat or
   * registration in flight is awaited first, so nothing registers the replica again after this.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#current;
    this.#registered = false;
    await this.#post("DELETE", "/unregister", this.#identity()).catch(() => undefined);
    await this.#dispatcher?.close();
  }

  /** Sends the registration again right away (capability states changed: warm, cold, failed). */
  refresh(): Promise<void> {
    if (this.#busy) {
      this.#again = true;
      return Promise.resolve();
    }
    this.#registered = false;
    return this.#tick();
  }

  /**
   * The API server may have gone away (its connection to this replica dropped): check now, and
   * keep trying quickly while it cannot be reached, instead of waiting for the next heartbeat.
   */
  reconnect(): void {
    // At most one check a second, whoever opens and closes connections to this replica.
    const now = Date.now();
    if (this.#stopped || now - this.#reconnectedAt < 1_000) return;
    this.#reconnectedAt = now;
    this.#backoffMs = 0;
    clearTimeout(this.#timer);
    void this.#tick().finally(() => this.#schedule());
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const interval = this.#body().heartbeat_interval_ms;
    this.#timer = setTimeout(
      () => {
        void this.#tick().finally(() => this.#schedule());
      },
      this.#unreachable ? this.#nextBackoff(interval) : interval,
    );
    this.#timer.unref();
  }

  /** 0.1 s, doubling up to 2 s (or the interval, if shorter); each wait jittered to half to whole. */
  #nextBackoff(interval: number): number {
    this.#backoffMs = Math.min(this.#backoffMs === 0 ? 100 : this.#backoffMs * 2, Math.min(interval, 2_000));
    return this.#backoffMs * (0.5 + Math.random() / 2);
  }

  #tick(): Promise<void> {
    if (this.#busy || this.#stopped) return this.#current;
    this.#current = this.#beat();
    return this.#current;
  }

  async #beat(): Promise<void> {
    this.#busy = true;
    try {
      if (this.#registered) {
        const { draining, drain_seq } = this.#body();
        const status = await this.#post("POST", "/heartbeat", {
          ...this.#identity(),
          ...(draining !== undefined ? { draining } : {}),
          ...(drain_seq !== undefined ? { drain_seq } : {}),
        });
        if (status === 404) this.#registered = false;
      }
      if (!this.#registered && !this.#stopped) {
        const body = this.#body();
        const status = await this.#post("POST", "/register", body);
        this.#registered = status === 200;
        if (this.#registered) this.#logger.info({ apiServer: this.#apiServer }, "registered");
        else if (status === 409) this.#logger.warn({ replica: body.replica_id }, "replica id held by another live replica; retrying");
        else this.#logger.warn({ status }, "registration refused");
      }
      this.#unreachable = false;
      this.#backoffMs = 0;
    } catch (err) {
      if (this.#registered) this.#logger.warn({ err: (err as Error).message }, "API server unreachable; will register again");
      this.#registered = false;
      this.#unreachable = true;
    } finally {
      this.#busy = false;
    }
    if (this.#again && !this.#stopped) {
      this.#again = false;
      this.#registered = false;
      await this.#beat();
    }
  }

  /** Who we are, for heartbeats and unregister. */
  #identity(): { replica_id: string; replica_secret: string } {
    const { replica_id, replica_secret } = this.#body();
    return { replica_id, replica_secret };
  }

  async #post(method: "POST" | "DELETE", path: string, body: unknown): Promise<number> {
    const res = await request(this.#apiServer + path, {
      method,
      headers: this.#headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
      ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
    });
    await res.body.dump();
    return res.statusCode;
  }
}
