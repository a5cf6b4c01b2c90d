/**
 * A replica registered with several API servers at once (`--api-server a,b`): one
 * {@link RegistrationLoop} per API server, each registering, heartbeating and re-registering on
 * its own, so every API server holds the full registry and can route any request; one API server
 * being down delays nothing at the others. All loops share one body, so every API server knows
 * the replica by the same id and secret.
 *
 * @example
 * ```ts
 * const set = new RegistrationSet(["http://10.0.0.1:8080", "http://10.0.0.2:8080"], (apiServer) => new RegistrationLoop({ apiServer, body, logger }));
 * await set.start(); // one attempt at each, in parallel; unreachable ones keep retrying
 * ```
 */
import type { RegistrationLoop } from "./registration.js";

export class RegistrationSet {
  readonly loops: readonly RegistrationLoop[];

  constructor(apiServers: readonly string[], make: (apiServer: string) => RegistrationLoop) {
    this.loops = apiServers.map(make);
  }

  /** True when at least one API server holds the registration. */
  get registered(): boolean {
    return this.loops.some((l) => l.registered);
  }

  /** Registers with each API server (one attempt each, in parallel) and starts their heartbeats. */
  async start(): Promise<void> {
    await Promise.all(this.loops.map((l) => l.start()));
  }

  /** Sends the registration again to each API server (capability states changed). */
  async refresh(): Promise<void> {
    await Promise.all(this.loops.map((l) => l.refresh()));
  }

  /** Stops every loop and unregisters from each API server (best effort, bounded in time). */
  async stop(): Promise<void> {
    await Promise.all(this.loops.map((l) => l.stop()));
  }
}
