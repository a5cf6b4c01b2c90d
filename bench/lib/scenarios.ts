/**
 * The scenarios of the suite and the processes behind them. Everything is started once, up front,
 * and stays up for every round: the rounds then only differ in which URL the load goes to.
 *
 * Processes (each its own event loop): bare node:http; anyserve API server; one anyserve replica
 * running bench/apps/noop_app.ts; nginx if available; hop.ts's frame server and frame gateway.
 */
import path from "node:path";
import { ROOT, forkServer, startCli } from "./procs.js";
import type { Target } from "./load.js";
import { findNginx, startNginx } from "../servers/nginx.js";

/** A measured scenario. `procs` are the server processes (name → pid) whose CPU is charged to it. */
export interface Scenario extends Target {
  id: string;
  label: string;
  procs: Record<string, number>;
}

/** A row printed without figures, with the reason. */
export interface Unmeasured {
  id: string;
  label: string;
  note: string;
}

/**
 * The request of every scenario: a 222-byte OIP v2 JSON request with one BYTES input. Sized like
 * the request of the reference measurements (issue 8, fast-gateway.md) so ratios compare.
 */
export function requestBody(bytes = 222): string {
  const make = (pad: string): string =>
    JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [pad] }] });
  const body = make("x".repeat(Math.max(0, bytes - make("").length)));
  if (body.length !== bytes) throw new Error(`request body is ${body.length} bytes, wanted ${bytes}`);
  return body;
}

const JSON_CT = { "content-type": "application/json" };
const NOOP = { ...JSON_CT, "x-capability-type": "noop" };

export async function startScenarios(body: string, log: (line: string) => void): Promise<{ scenarios: Scenario[]; unmeasured: Unmeasured[] }> {
  const scenarios: Scenario[] = [];
  const unmeasured: Unmeasured[] = [];

  const bare = await forkServer<{ url: string }>("bare", path.join(ROOT, "bench/servers/bare.ts"));
  // The bare server gets the capability header too: every scenario sends the same request bytes.
  scenarios.push({ id: "bare", label: "bare node:http (baseline)", url: `${bare.ready.url}/infer`, headers: NOOP, body, procs: { bare: bare.child.pid! } });

  const api = await startCli("api-server", ["api-server", "--port", "0"]);
  const replica = await startCli("replica", ["start", "--app", "bench/apps/noop_app.ts:app", "--port", "0", "--api-server", api.ready.url!]);
  await waitForRegistry(api.ready.url!, 1);
  const both = { "api-server": api.child.pid!, replica: replica.child.pid! };
  scenarios.push(
    { id: "rest-infer", label: "full path REST /infer", url: `${api.ready.url}/infer`, headers: NOOP, body, procs: both },
    { id: "rest-v2", label: "full path REST /v2/models/{m}/infer", url: `${api.ready.url}/v2/models/noop-model/infer`, headers: JSON_CT, body, procs: both },
    { id: "direct", label: "direct to replica REST /infer", url: `${replica.ready.http}/infer`, headers: NOOP, body, procs: { replica: replica.child.pid! } },
  );
  // The same full path with metrics off on both processes: what metrics cost (issue 7: ≤ 10 %).
  const apiOff = await startCli("api-server-nometrics", ["api-server", "--port", "0", "--no-metrics"]);
  const replicaOff = await startCli("replica-nometrics", ["start", "--app", "bench/apps/noop_app.ts:app", "--port", "0", "--api-server", apiOff.ready.url!, "--no-metrics"]);
  await waitForRegistry(apiOff.ready.url!, 1);
  scenarios.push({ id: "rest-infer-nometrics", label: "full path REST /infer, metrics off", url: `${apiOff.ready.url}/infer`, headers: NOOP, body, procs: { "api-server": apiOff.child.pid!, replica: replicaOff.child.pid! } });

  // hop.ts's prototype: its `--child` mode serves { bare, framed } ports; the gateway is ours to run.
  const hop = await forkServer<{ framed: number }>("hop-frame-server", path.join(ROOT, "bench/hop.ts"), ["--child"]);
  const gw = await forkServer<{ url: string }>("frame-gateway", path.join(ROOT, "bench/servers/frame-gateway.ts"), [`http://127.0.0.1:${hop.ready.framed}`]);
  scenarios.push({ id: "frame-hop", label: "framed hop alone (bench/hop.ts prototype)", url: `${gw.ready.url}/infer`, headers: JSON_CT, body, procs: { "frame-gateway": gw.child.pid!, "frame-server": hop.child.pid! } });

  const nginxBin = findNginx();
  if (nginxBin) {
    const nginx = await startNginx(nginxBin, bare.ready.url);
    scenarios.push({ id: "nginx", label: "nginx → bare node:http", url: `${nginx.url}/infer`, headers: NOOP, body, procs: { nginx: nginx.child.pid!, bare: bare.child.pid! } });
    log(`nginx: ${nginxBin}`);
  } else {
    unmeasured.push({ id: "nginx", label: "nginx → bare node:http", note: "skipped: nginx not installed" });
  }
  unmeasured.push(
    { id: "grpc-infer", label: "full path gRPC ModelInfer", note: "not yet measured" },
    { id: "moleculer", label: "Moleculer gateway → service", note: "not yet measured" },
    { id: "worker-hop", label: "replica → worker-thread hop", note: "not yet measured" },
  );

  for (const s of scenarios) await check(s);
  return { scenarios, unmeasured };
}

async function waitForRegistry(apiUrl: string, total: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const r = (await (await fetch(`${apiUrl}/registry`)).json()) as { total: number };
      if (r.total === total) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`registry did not reach ${total} replica(s) in 10 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One request per scenario before measuring: a scenario that answers errors must not be timed. */
async function check(s: Scenario): Promise<void> {
  const res = await fetch(s.url, { method: "POST", headers: s.headers, body: s.body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${s.label} answered ${res.status}: ${text.slice(0, 300)}`);
  JSON.parse(text);
}
