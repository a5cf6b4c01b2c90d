/**
 * What a scenario of the suite is: a way to put load on some server processes, the processes whose
 * CPU is charged to it, and the baseline its ratios divide by (measured in the same round). Also
 * the request body, the HTTP scenario (wrk or autocannon), and the API server + replica pair that
 * several scenarios start.
 */
import { runLoad, type LoadResult, type Target } from "./load.js";
import { startCli } from "./procs.js";
import { runWrk, wrkTool } from "./wrk.js";

export interface Scenario {
  id: string;
  label: string;
  /** Short name when it is another scenario's baseline (the table's "vs" column). */
  short?: string;
  /** Id of the scenario its ratio and c=1 added latency are taken against. */
  baseline: string;
  /** The load generator; a ratio across different ones includes the generators' own cost. */
  generator: "wrk" | "autocannon" | "grpc-js" | "sdk";
  /** Where the load goes, for the results file. */
  target: string;
  headers?: Record<string, string>;
  /** Server processes (name → pid) whose CPU is charged to it; empty: CPU not measured. */
  procs: Record<string, number>;
  /** Measured at concurrency 1 too (false for rows whose latency nothing reads, to save time). */
  c1: boolean;
  /** Warm-up, then `onStart()` (the CPU meters start), then the measured run. */
  measure(connections: number, seconds: number, warmup: number, onStart: () => void): Promise<LoadResult>;
  /** One request before measuring: a scenario that answers errors must not be timed. */
  check(): Promise<void>;
}

/** A row printed without figures, with the reason. */
export interface Unmeasured {
  id: string;
  label: string;
  note: string;
}

export type Entry = Scenario | Unmeasured;
export const isScenario = (e: Entry): e is Scenario => !("note" in e);

/**
 * The request of every HTTP scenario: a 222-byte OIP v2 JSON request with one BYTES input, the
 * size of the request in the reference gateway measurements the fast-path goals came from (a
 * 222-byte JSON POST on a 2-core machine with wrk), so ratios compare.
 */
export function requestBody(bytes = 222): string {
  const make = (pad: string): string => JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [pad] }] });
  const body = make("x".repeat(Math.max(0, bytes - make("").length)));
  if (body.length !== bytes) throw new Error(`request body is ${body.length} bytes, wanted ${bytes}`);
  return body;
}

export const JSON_CT = { "content-type": "application/json" };
export const NOOP = { ...JSON_CT, "x-capability-type": "noop" };

type HttpOptions = Pick<Scenario, "id" | "label" | "procs"> &
  Partial<Pick<Scenario, "short" | "baseline" | "c1">> & { headers: Record<string, string> };

/**
 * A scenario that POSTs `body` to `url`. Loaded runs use wrk when there is one (bench/lib/wrk.ts:
 * it leaves more of the shared cores to the servers), else autocannon. Runs at concurrency 1 and
 * warm-ups always use autocannon: they need fractional durations, and the c=1 latency is timed by
 * our own clock on every response (bench/lib/load.ts).
 */
export function httpScenario(url: string, body: string, o: HttpOptions): Scenario {
  const target: Target = { url, headers: o.headers, body };
  const wrk = wrkTool() !== undefined;
  return {
    baseline: "bare",
    c1: true,
    ...o,
    generator: wrk ? "wrk" : "autocannon",
    target: url,
    async measure(connections, seconds, warmup, onStart) {
      if (warmup > 0) await runLoad(target, connections, warmup);
      onStart();
      return wrk && connections > 1 ? runWrk(target, connections, seconds) : runLoad(target, connections, seconds);
    },
    async check() {
      const res = await fetch(url, { method: "POST", headers: o.headers, body });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${o.label} answered ${res.status}: ${text.slice(0, 300)}`);
      JSON.parse(text);
    },
  };
}

/** Waits until the API server at `apiUrl` has `total` replicas registered. */
export async function waitForRegistry(apiUrl: string, total: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const r = (await (await fetch(`${apiUrl}/registry`)).json()) as { total: number };
      if (r.total === total) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`registry did not reach ${total} replica(s) in 10 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const NOOP_APP = "bench/apps/noop_app.ts:app";

type Cli = Awaited<ReturnType<typeof startCli>>;

/** An API server and one noop replica registered with it (`suffix` names their processes). */
export async function gatewayPair(suffix: string, apiArgs: string[], replicaArgs: string[]): Promise<{ api: Cli; replica: Cli }> {
  const api = await startCli(`api-server${suffix}`, ["api-server", "--port", "0", ...apiArgs]);
  const replica = await startCli(`replica${suffix}`, [
    "start",
    "--app",
    NOOP_APP,
    "--port",
    "0",
    "--api-server",
    api.ready.url!,
    // The no-op handler on the event loop, many at once: what the gateway rows measure is the hop,
    // not a queue (the default strategy is `single`, one call at a time).
    "--threading-strategy",
    "async",
    ...replicaArgs,
  ]);
  await waitForRegistry(api.ready.url!, 1);
  return { api, replica };
}
