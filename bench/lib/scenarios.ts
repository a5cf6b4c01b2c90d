/**
 * The scenarios of the suite and the processes behind them. Everything is started once, up front
 * (independent groups in parallel), and stays up for every round: the rounds then only differ in
 * where the load goes. The table lists them in the order of `entries`.
 *
 * Processes (each its own event loop): bare node:http; anyserve API server (REST + gRPC ingress)
 * with one anyserve replica running bench/apps/noop_app.ts; two more such pairs (REST only) for
 * `POST /infer` with metrics on and off; hop.ts's frame server and frame gateway; nginx if
 * available; and those of scenarios-more.ts (gRPC, Moleculer, worker-thread hop, fast ingress,
 * SDK client).
 *
 * Why `POST /infer` has pairs of its own: "metrics on ÷ off" must compare two processes that
 * differ in `--no-metrics` alone. When the metrics-on side also served the `/v2`, gRPC and SDK
 * rows between its turns, its API server cost 40–41 µs a request against the metrics-off one's
 * 35–36 in the same runs, where metrics themselves cost ~2 (docs/performance.md).
 */
import path from "node:path";
import { ROOT, forkServer } from "./procs.js";
import { JSON_CT, NOOP, gatewayPair, httpScenario, isScenario, type Entry, type Scenario } from "./scenario.js";
import {
  fastIngressScenarios,
  grpcScenarios,
  moleculerScenario,
  sdkScenarios,
  threadHopScenarios,
  workerProcessScenarios,
} from "./scenarios-more.js";
import { findNginx, startNginx } from "../servers/nginx.js";

export async function startScenarios(body: string, log: (line: string) => void): Promise<{ entries: Entry[]; scenarios: Scenario[] }> {
  const bareStart = forkServer<{ url: string }>("bare", path.join(ROOT, "bench/servers/bare.ts"));
  const mainStart = gatewayPair("", ["--grpc-port", "0"], []);
  // Twins: started alike, each serving one row, so their ratio is what metrics cost.
  const restStart = gatewayPair("-rest", [], []);
  const restNoMetricsStart = gatewayPair("-nometrics", ["--no-metrics"], ["--no-metrics"]);

  const groups = await Promise.all([
    bareStart.then((bare) => [
      // The bare server gets the capability header too: every scenario sends the same request bytes.
      httpScenario(`${bare.ready.url}/infer`, body, {
        id: "bare",
        label: "bare node:http (baseline)",
        short: "node:http",
        headers: NOOP,
        procs: { bare: bare.child.pid! },
      }),
    ]),
    restStart.then(({ api, replica }) => [
      httpScenario(`${api.ready.url}/infer`, body, {
        id: "rest-infer",
        label: "full path REST /infer",
        headers: NOOP,
        procs: { "api-server": api.child.pid!, replica: replica.child.pid! },
      }),
    ]),
    mainStart.then(({ api, replica }) => [
      httpScenario(`${api.ready.url}/v2/models/noop-model/infer`, body, {
        id: "rest-v2",
        label: "full path REST /v2/models/{m}/infer",
        headers: JSON_CT,
        procs: { "api-server": api.child.pid!, replica: replica.child.pid! },
        c1: false,
      }),
      httpScenario(`${replica.ready.http}/infer`, body, {
        id: "direct",
        label: "direct to replica REST /infer",
        headers: NOOP,
        procs: { replica: replica.child.pid! },
      }),
    ]),
    // The same full path with metrics off on both processes: what metrics cost (issue 7: ≤ 10 %).
    restNoMetricsStart.then(({ api, replica }) => [
      httpScenario(`${api.ready.url}/infer`, body, {
        id: "rest-infer-nometrics",
        label: "full path REST /infer, metrics off",
        headers: NOOP,
        procs: { "api-server": api.child.pid!, replica: replica.child.pid! },
        c1: false,
      }),
    ]),
    fastIngressScenarios(body),
    (async () => {
      // hop.ts's prototype: its `--child` mode serves { bare, framed } ports; the gateway is ours to run.
      const hop = await forkServer<{ framed: number }>("hop-frame-server", path.join(ROOT, "bench/hop.ts"), ["--child"]);
      const gw = await forkServer<{ url: string }>("frame-gateway", path.join(ROOT, "bench/servers/frame-gateway.ts"), [
        `http://127.0.0.1:${hop.ready.framed}`,
      ]);
      return [
        httpScenario(`${gw.ready.url}/infer`, body, {
          id: "frame-hop",
          label: "framed hop alone (bench/hop.ts prototype)",
          headers: JSON_CT,
          procs: { "frame-gateway": gw.child.pid!, "frame-server": hop.child.pid! },
        }),
      ];
    })(),
    bareStart.then(async (bare): Promise<Entry[]> => {
      const nginxBin = findNginx();
      if (!nginxBin) return [{ id: "nginx", label: "nginx → bare node:http", note: "skipped: nginx not installed" }];
      const nginx = await startNginx(nginxBin, bare.ready.url);
      log(`nginx: ${nginxBin}`);
      return [
        httpScenario(`${nginx.url}/infer`, body, {
          id: "nginx",
          label: "nginx → bare node:http",
          headers: NOOP,
          procs: { nginx: nginx.child.pid!, bare: bare.child.pid! },
        }),
      ];
    }),
    moleculerScenario(body),
    mainStart.then(({ api, replica }) =>
      grpcScenarios(api.ready.grpc!, { "api-server": api.child.pid!, replica: replica.child.pid! }, log),
    ),
    threadHopScenarios(body),
    workerProcessScenarios(body),
    Promise.all([mainStart, bareStart]).then(([{ api }, bare]) => sdkScenarios(api.ready.url!, bare.ready.url)),
  ]);

  const entries = groups.flat();
  const scenarios = entries.filter(isScenario);
  for (const s of scenarios) await s.check();
  return { entries, scenarios };
}
