// Shared pieces of the direct-path tests: an API server and replicas in this process on real
// sockets, handler invocation counts, and the gateway's own request counter read from /metrics.
import { startApiServer } from "../../src/gateway/api-server.js";
import { startReplica, type ReplicaOptions, type RunningReplica } from "../../src/replica/replica.js";
import { AnyServe } from "../../src/sdk/app.js";
import { Client, type ClientOptions } from "../../src/sdk/client.js";
import { silentLogger } from "../../src/util/logger.js";
import { waitFor } from "../helpers/processes.js";

type Cleanup = { after(fn: () => unknown): void };

/** Handler invocations by replica id, across every replica of this process. */
export const runs = new Map<string, number>();
export const totalRuns = (): number => [...runs.values()].reduce((a, b) => a + b, 0);

/** Calls the `slow` handler started, and aborts it saw. */
export const slowStarts = { count: 0 };
export const aborts = { count: 0 };

/** `who` answers its replica id (and counts the run); `tokens` streams words; `slow` waits `ms` or its abort. */
export function whoApp(extra?: (app: AnyServe) => void): AnyServe {
  const app = new AnyServe();
  app.capability({ type: "who" }, (_req, ctx) => {
    runs.set(ctx.replicaId, (runs.get(ctx.replicaId) ?? 0) + 1);
    return ctx.replicaId;
  });
  app.capability({ type: "tokens" }, async function* (req, ctx) {
    for (const w of String(req.value("text")).split(" ")) yield `${ctx.replicaId}:${w}`;
  });
  app.capability(
    { type: "slow" },
    (req, ctx) =>
      new Promise((resolve) => {
        slowStarts.count++;
        const timer = setTimeout(() => resolve("slept"), Number(req.value("ms")));
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          aborts.count++;
          resolve("aborted");
        });
      }),
  );
  extra?.(app);
  return app;
}

export async function apiServer(t: Cleanup, opts: Parameters<typeof startApiServer>[0] = {}) {
  const s = await startApiServer({ port: 0, logger: silentLogger, heartbeatIntervalMs: 200, ...opts });
  t.after(() => s.close());
  return s;
}

export async function replica(
  t: Cleanup,
  apiServer: string,
  replicaId: string,
  opts: { app?: AnyServe; token?: string; config?: ReplicaOptions["config"] } = {},
): Promise<RunningReplica> {
  const r = await startReplica({
    app: opts.app ?? whoApp(),
    replicaId,
    apiServer,
    logger: silentLogger,
    heartbeatIntervalMs: 200,
    ...(opts.token ? { token: opts.token } : {}),
    ...(opts.config ? { config: opts.config } : {}),
  });
  t.after(() => r.stop());
  return r;
}

/** Requests the API server answered (`anyserve_gateway_requests_total`, every label). */
export async function gatewayRequests(url: string, token?: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {})).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("anyserve_gateway_requests_total")) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** Waits until the client's table lists exactly `ids` (sorted). */
export function tableLists(client: Client, ids: string[], timeoutMs = 10_000): Promise<unknown> {
  const want = JSON.stringify([...ids].sort());
  return waitFor(
    `the client's table to list ${want}`,
    () => {
      const routes = client.routes();
      return routes !== undefined && JSON.stringify([...routes.replicas].sort()) === want;
    },
    timeoutMs,
  );
}

/**
 * A direct client whose table lists `ids`: its first call (`first`, through the gateway) opens
 * the watch stream. Closed when the test ends.
 */
export async function directClient(
  t: Cleanup,
  apiServer: string,
  ids: string[],
  first: Record<string, string | number> = { type: "who" },
  o: Partial<ClientOptions> = {},
): Promise<Client> {
  const client = new Client({ apiServer, direct: true, ...o });
  t.after(() => client.close());
  const { type, ...inputs } = first;
  await client.infer({ type: String(type) }, Object.keys(inputs).length > 0 ? inputs : { x: 1 });
  await tableLists(client, ids);
  return client;
}
