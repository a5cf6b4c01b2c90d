/**
 * Two API servers and replicas of test/fixtures/multihost_app.ts registered with both (api1 first),
 * each replica with its own object directory: the setup of the API-server failover tests
 * (test/replica/api-failover.test.ts on loopback, test/multihost/hosts.test.ts in network
 * namespaces). Real processes, port 0; everything started is stopped by the caller's cleanups.
 */
import path from "node:path";
import { FIXTURES, startCli, waitFor, type Proc } from "./processes.js";
import { tempDir } from "../objects/helpers.js";

export const MULTIHOST_APP = path.join(FIXTURES, "multihost_app.ts:app");

type Cleanup = { after(fn: () => unknown): void };
export type ApiName = "api1" | "api2";

/** A replica as an API server's `GET /registry` lists it. */
export interface Registered {
  replica_id: string;
  service?: string;
  endpoint: string;
  http_endpoint: string;
  healthy?: boolean;
}

export async function registry(apiServer: string): Promise<Registered[]> {
  const res = await fetch(`${apiServer}/registry`, { signal: AbortSignal.timeout(2_000) });
  return ((await res.json()) as { replicas: Registered[] }).replicas;
}

/** Where each process runs: its namespace and the address it is reached at there (test/helpers/netns.ts); loopback when absent. */
export type Hosts = Record<string, { ns: string; address: string }> | undefined;

const HEALTH = ["--health-check-interval", "0.2"];

/**
 * Starts api1 and api2 (health checks every 0.2 s); resolves with their processes and URLs. In
 * namespaces (`hosts` with `api1`, `api2`) they bind 0.0.0.0 and the URLs carry their LAN addresses.
 */
export async function startTwoApiServers(
  hooks: Cleanup,
  hosts?: Hosts,
): Promise<{ procs: Record<ApiName, Proc>; urls: Record<ApiName, string> }> {
  const names = ["api1", "api2"] as const;
  const started = await Promise.all(
    names.map((name) => {
      const host = hosts?.[name];
      const bind = host ? ["--host", "0.0.0.0"] : [];
      return startCli(
        hooks,
        ["api-server", ...bind, "--port", "0", "--grpc-port", "0", ...HEALTH],
        {},
        60_000,
        host ? { netns: host.ns } : {},
      );
    }),
  );
  const url = (name: ApiName, p: Proc) => {
    const host = hosts?.[name];
    return host ? `http://${host.address}:${new URL(p.ready.url!).port}` : p.ready.url!;
  };
  return {
    procs: { api1: started[0]!, api2: started[1]! },
    urls: { api1: url("api1", started[0]!), api2: url("api2", started[1]!) },
  };
}

/**
 * Starts a replica of {@link MULTIHOST_APP} serving `service` as `replicaId`, registered with
 * `apiServers` (in that order), with its own object directory. `o.netns`: run in that namespace,
 * bound to 0.0.0.0; `o.extra`: more flags; `o.env`: its environment.
 */
export function startAppReplica(
  hooks: Cleanup,
  service: string,
  replicaId: string,
  apiServers: readonly string[],
  o: { extra?: string[]; env?: NodeJS.ProcessEnv; netns?: string } = {},
): Promise<Proc> {
  const bind = o.netns ? ["--host", "0.0.0.0"] : [];
  const args = ["start", "--app", MULTIHOST_APP, "--service", service, "--replica-id", replicaId, ...bind, "--port", "0"];
  args.push("--api-server", apiServers.join(","), "--object-store", tempDir(hooks), ...HEALTH, ...(o.extra ?? []));
  return startCli(hooks, args, o.env ?? {}, 60_000, o.netns ? { netns: o.netns } : {});
}

/** Waits until each of `apiServers` lists `count` replicas. */
export async function waitRegistered(apiServers: readonly string[], count: number, timeoutMs: number, everyMs = 50): Promise<void> {
  for (const url of apiServers) {
    await waitFor(`${count} replicas registered at ${url}`, async () => (await registry(url)).length === count, timeoutMs, everyMs);
  }
}
