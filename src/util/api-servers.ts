/**
 * The API servers of one deployment, as a caller of them sees them: the list, the one to use now,
 * and when to move to the next. Shared by everything in a replica that calls an API server —
 * `ctx.call` (the SDK `Client`), delegation, object owner look-ups, the direct path's route watch —
 * so that one of them finding an API server dead moves them all (docs/scale-out.md).
 *
 * The policy:
 * - the current API server is used until it fails at the connection level (refused, reset or
 *   closed before any byte of the answer, a connect timeout) or answers 503 saying it is not ready
 *   (`REGISTRY_WARMING_UP`, `SHUTTING_DOWN`); then the next one in the list becomes current —
 *   sticky, and round the list again when that one fails too. Any other answer (a 404, a replica's
 *   `QUEUE_FULL`, a 502 the API server sent) says the API server is fine: it stays;
 * - the failed request is sent again to the new current one only when that is safe: it was never
 *   delivered (connect refused or timed out, or the 503 above: nothing ran), or the caller says it
 *   may be replayed (a unary call, an idempotent read) and the failure came before any byte of the
 *   answer. A stream of which part arrived is never replayed (its caller does not come here then);
 * - within the call's deadline, each API server at most once per call;
 * - each switch is logged once (warn), not each request that meets it.
 *
 * @example
 * ```ts
 * const servers = new ApiServers(["http://10.0.0.1:8080", "http://10.0.0.2:8080"], { logger });
 * const routes = await servers.call((url, ms) => getJson(`${url}/routes`, ms), { timeoutMs: 5_000, replayable: true });
 * ```
 */
import { AnyServeError } from "../errors.js";
import type { Logger } from "./log.js";

/** A failure that moves the caller to the next API server, and whether the request may have been delivered. */
export interface Failover {
  /** Why, for the log: an error code (`ECONNREFUSED`, `REGISTRY_WARMING_UP`, …). */
  reason: string;
  /** False when the request certainly did not reach a handler: it may be sent again whatever it is. */
  delivered: boolean;
}

export interface ApiServersOptions {
  /** Where each switch is logged (warn); default: not logged. */
  logger?: Pick<Logger, "warn"> | undefined;
}

export interface ApiServerCallOptions {
  /** The call's whole time (ms): no attempt starts after it. */
  timeoutMs: number;
  /** The request may be sent again after a failure that came before any byte of the answer (unary, idempotent). */
  replayable: boolean;
  signal?: AbortSignal | undefined;
}

/** Connect-phase errors: the request never left this process. */
const NOT_DELIVERED = new Set([
  "ECONNREFUSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);
/** The connection broke before any byte of the answer: the request may have been delivered. */
const LOST = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED", "ECONNABORTED"]);
/** 503s an API server sends about itself: it did not route the request. */
const NOT_READY = new Set(["REGISTRY_WARMING_UP", "SHUTTING_DOWN"]);

/**
 * Whether `err`, from a request to an API server, moves the caller to the next one (see the
 * module comment), or undefined: the API server is fine. Reads Node's and undici's error codes
 * (on the error or its `cause`), and the SDK's REST errors (`connectionLost`, `connectFailed`).
 */
export function failoverOf(err: unknown): Failover | undefined {
  if (err instanceof AnyServeError) {
    if (NOT_READY.has(err.code)) return { reason: err.code, delivered: false };
    const data = err.data as { connectionLost?: unknown; connectFailed?: unknown } | undefined;
    if (data?.connectionLost !== true) return undefined;
    return { reason: err.code, delivered: data.connectFailed !== true };
  }
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 3; e = e.cause as typeof e, depth++) {
    const code = typeof e.code === "string" ? e.code : undefined;
    if (code === undefined) continue;
    if (NOT_DELIVERED.has(code)) return { reason: code, delivered: false };
    if (LOST.has(code)) return { reason: code, delivered: true };
  }
  return undefined;
}

export class ApiServers {
  #urls: readonly string[];
  readonly #logger: Pick<Logger, "warn"> | undefined;
  #current = 0;

  constructor(urls: string | readonly string[], o: ApiServersOptions = {}) {
    this.#urls = checked(urls);
    this.#logger = o.logger;
  }

  /** The API servers, in the order they are tried. */
  get urls(): readonly string[] {
    return this.#urls;
  }

  /**
   * Replaces the list (a name that resolves to several API servers, resolved again: see
   * replica/registrations.ts). The current one stays current if it is still in the list; else
   * the first of the new list is.
   */
  update(urls: readonly string[]): void {
    const next = checked(urls);
    const at = next.indexOf(this.current);
    this.#urls = next;
    this.#current = Math.max(0, at);
  }

  /** The API server to use now. */
  get current(): string {
    return this.#urls[this.#current]!;
  }

  /**
   * After a failure of `url` that moves (see {@link failoverOf}): the next API server becomes
   * current, unless another caller has moved already (calls failing together move one step, not
   * one each). Returns true when this call moved it.
   */
  moveFrom(url: string, reason: string): boolean {
    if (this.#urls.length < 2 || this.current !== url) return false;
    this.#current = (this.#current + 1) % this.#urls.length;
    this.#logger?.warn({ from: url, to: this.current, reason }, "API server failed: using the next one");
    return true;
  }

  /**
   * Runs `attempt` on the current API server, and on a failure that moves, on the next ones while
   * that is safe and time is left (see the module comment). `attempt` gets the URL and the time
   * left (ms); its error is thrown as it is when no other API server may be tried.
   */
  async call<T>(attempt: (url: string, timeoutMs: number) => Promise<T>, o: ApiServerCallOptions): Promise<T> {
    if (this.#urls.length === 1) return attempt(this.#urls[0]!, o.timeoutMs);
    const end = Date.now() + o.timeoutMs;
    for (let tried = 1; ; tried++) {
      const url = this.current;
      try {
        return await attempt(url, Math.max(1, end - Date.now()));
      } catch (err) {
        const f = failoverOf(err);
        if (f === undefined) throw err;
        // The API server is gone or not ready: later calls go to the next one even when this one may not.
        this.moveFrom(url, f.reason);
        if ((f.delivered && !o.replayable) || o.signal?.aborted || tried >= this.#urls.length || Date.now() >= end) throw err;
      }
    }
  }
}

function checked(urls: string | readonly string[]): readonly string[] {
  const list = [urls].flat();
  if (list.length === 0 || !list.every((u) => typeof u === "string" && u.length > 0)) {
    throw new TypeError(`ApiServers needs at least one URL, got ${JSON.stringify(urls)}`);
  }
  return list;
}
