/**
 * A replica registered with several API servers at once: one {@link RegistrationLoop} per API
 * server, each registering, heartbeating and re-registering on its own, so every API server holds
 * the full registry and can route any request, and one being down delays nothing at the others.
 * All loops share one body: every API server knows the replica by the same id and secret.
 *
 * The API servers are the URLs given (`--api-server a,b`), and for an `http://` URL whose name
 * resolves to several addresses of one family (a Kubernetes headless Service: one record per API
 * server pod), each of those addresses. Names are resolved again every `rediscoverMs`: a new API
 * server gets a loop, one whose address is gone loses its loop (unregistered, best effort).
 * `https://` URLs are kept as names, since the certificate names the host.
 *
 * @example
 * ```ts
 * const set = new RegistrationSet(["http://anyserve-api-headless:8080"], (apiServer) => new RegistrationLoop({ apiServer, body, logger }));
 * await set.start(); // one loop per API server pod; unreachable ones keep retrying
 * ```
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { RegistrationLoop } from "./registration.js";

export interface RegistrationSetOptions {
  /** How often names are resolved again (ms; default 10 s). */
  rediscoverMs?: number;
  /** Resolves a name to its addresses (default: `dns.lookup`, all addresses). */
  resolve?: (host: string) => Promise<{ address: string; family: number }[]>;
  /** Told the targets (as {@link RegistrationSet.targets}) whenever they changed: the replica's other calls follow them. */
  onTargets?: (targets: string[]) => void;
}

export class RegistrationSet {
  readonly #urls: readonly string[];
  readonly #make: (apiServer: string) => RegistrationLoop;
  readonly #o: RegistrationSetOptions;
  /** Target URL → its loop. */
  readonly #loops = new Map<string, RegistrationLoop>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #syncing: Promise<void> = Promise.resolve();

  constructor(apiServers: readonly string[], make: (apiServer: string) => RegistrationLoop, o: RegistrationSetOptions = {}) {
    this.#urls = apiServers;
    this.#make = make;
    this.#o = o;
  }

  /** The API servers a loop runs for now (URLs, names expanded to addresses). */
  get targets(): string[] {
    return [...this.#loops.keys()];
  }

  get loops(): RegistrationLoop[] {
    return [...this.#loops.values()];
  }

  /** True when at least one API server holds the registration. */
  get registered(): boolean {
    return this.loops.some((l) => l.registered);
  }

  /** Resolves the API servers, registers with each (one attempt each, in parallel) and starts their heartbeats. */
  async start(): Promise<void> {
    await this.#sync();
    this.#schedule();
  }

  /** Sends the registration again to each API server (capability states changed). */
  async refresh(): Promise<void> {
    await Promise.all(this.loops.map((l) => l.refresh()));
  }

  /**
   * A gateway's frame connection to this replica dropped: that API server may have restarted.
   * Which one is not known here (connections come from any address), so every loop checks now
   * (each at most once a second: `RegistrationLoop.reconnect`).
   */
  reconnect(): void {
    for (const l of this.loops) l.reconnect();
  }

  /** Stops every loop and unregisters from each API server (best effort, bounded in time). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#syncing;
    await Promise.all(this.loops.map((l) => l.stop()));
  }

  #schedule(): void {
    if (this.#stopped || !this.#urls.some(expandable)) return;
    this.#timer = setTimeout(() => {
      this.#syncing = this.#sync().finally(() => this.#schedule());
    }, this.#o.rediscoverMs ?? 10_000);
    this.#timer.unref();
  }

  /** Starts loops for new targets and stops those of targets that are gone. */
  async #sync(): Promise<void> {
    const wanted = new Set((await Promise.all(this.#urls.map((u) => this.#expand(u)))).flat());
    if (this.#stopped) return;
    const added: RegistrationLoop[] = [];
    for (const url of wanted) {
      if (this.#loops.has(url)) continue;
      const loop = this.#make(url);
      this.#loops.set(url, loop);
      added.push(loop);
    }
    const gone = [...this.#loops].filter(([url]) => !wanted.has(url));
    for (const [url] of gone) this.#loops.delete(url);
    if (added.length > 0 || gone.length > 0) this.#o.onTargets?.(this.targets);
    await Promise.all([...added.map((l) => l.start()), ...gone.map(([, l]) => l.stop())]);
  }

  /** `url` itself, or one URL per address when its name resolves to several of one family. */
  async #expand(url: string): Promise<string[]> {
    if (!expandable(url)) return [url];
    const u = new URL(url);
    let found: { address: string; family: number }[];
    try {
      found = await (this.#o.resolve ?? ((h) => lookup(h, { all: true })))(u.hostname);
    } catch {
      // Not resolvable now (DNS down, no pod yet): keep what we had for it, or the name itself.
      const had = [...this.#loops.keys()].filter((k) => sameService(k, u));
      return had.length > 0 ? had : [url];
    }
    const family = found[0]?.family;
    const addresses = [...new Set(found.filter((a) => a.family === family).map((a) => a.address))];
    if (addresses.length < 2) return [url];
    return addresses.map((a) => `${u.protocol}//${family === 6 ? `[${a}]` : a}:${u.port || "80"}${u.pathname.replace(/\/+$/, "")}`);
  }
}

/** An `http://` URL that names a host (not an address): it may stand for several API servers. */
function expandable(url: string): boolean {
  const u = new URL(url);
  return u.protocol === "http:" && isIP(u.hostname.replace(/^\[|\]$/g, "")) === 0;
}

/** Whether `target` (an expanded address URL) came from `u` (same port and path). */
function sameService(target: string, u: URL): boolean {
  const t = new URL(target);
  return t.port === (u.port || "80") || t.href === u.href;
}
