/**
 * The SDK client as a load generator: `--connections` concurrent loops of
 * `client.inferRaw({type: "noop"}, <the suite's 222-byte request>)`, each waiting for its answer
 * before the next, for `--warmup` then `--duration` seconds. Prints one JSON line
 * `{ requests, errors, rps, p50_us, p99_us }` (latencies in µs, over the measured part) and exits.
 *
 *   node --import tsx bench/clients/sdk-load.ts --mode direct --api-server URL [--token T] …
 *   node --import tsx bench/clients/sdk-load.ts --mode rest (--endpoint URL | --api-server URL) …
 *
 * `direct` is the direct path (docs/routing.md): the client keeps the API server's route table and
 * calls the replica over frames; it starts measuring only once the table has arrived, so no call
 * of the run goes through the gateway. `rest` is the same client over REST (e.g. against
 * bench/servers/bare.ts), so the two compare the transports, not two different clients.
 */
import { parseArgs } from "node:util";
import { Client } from "../../src/sdk/client.js";
import { requestBody } from "../lib/scenario.js";
import { percentile } from "../lib/stats.js";

const { values: a } = parseArgs({
  options: {
    mode: { type: "string", default: "rest" },
    "api-server": { type: "string" },
    endpoint: { type: "string" },
    token: { type: "string" },
    connections: { type: "string", default: "50" },
    duration: { type: "string", default: "4" },
    warmup: { type: "string", default: "1" },
  },
});
const connections = Number(a.connections);
const duration = Number(a.duration);
const warmup = Number(a.warmup);
if (a.mode !== "direct" && a.mode !== "rest") throw new Error(`--mode: direct or rest, got '${a.mode}'`);
if (!(connections >= 1 && duration > 0 && warmup >= 0)) throw new Error("--connections ≥ 1, --duration > 0, --warmup ≥ 0");

const token = a.token ?? process.env.ANYSERVE_TOKEN;
const client =
  a.mode === "direct"
    ? new Client({ apiServer: required(a["api-server"], "--api-server"), direct: true, connections, ...(token ? { token } : {}) })
    : new Client({
        ...(a.endpoint ? { endpoint: a.endpoint } : { apiServer: required(a["api-server"], "--api-server or --endpoint") }),
        connections,
      });
const capability = { type: "noop" };
const inputs = (JSON.parse(requestBody()) as { inputs: unknown[] }).inputs;

/** Response times of one phase, in µs, in a growing typed array (no per-call allocation). */
class Recorder {
  times = new Float64Array(1 << 16);
  n = 0;
  errors = 0;
  add(us: number): void {
    if (this.n === this.times.length) {
      const grown = new Float64Array(this.n * 2);
      grown.set(this.times);
      this.times = grown;
    }
    this.times[this.n++] = us;
  }
}

async function phase(seconds: number): Promise<{ rec: Recorder; elapsed: number }> {
  const rec = new Recorder();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let start = performance.now(); start < end; start = performance.now()) {
        try {
          await client.inferRaw(capability, inputs);
          rec.add((performance.now() - start) * 1000);
        } catch {
          rec.errors++;
        }
      }
    }),
  );
  return { rec, elapsed: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  if (a.mode === "direct") {
    // The first call starts the route table's watch stream; measure only once it has arrived.
    await client.inferRaw(capability, inputs);
    const deadline = Date.now() + 10_000;
    while (!client.routes()?.replicas.length) {
      if (Date.now() > deadline) throw new Error(`no route table from ${a["api-server"]}: ${client.routes()?.lastError ?? "nothing yet"}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  if (warmup > 0) await phase(warmup);
  const { rec, elapsed } = await phase(duration);
  const sorted = rec.times.subarray(0, rec.n).sort();
  const line = {
    requests: rec.n,
    errors: rec.errors,
    rps: rec.n / elapsed,
    p50_us: percentile(sorted, 0.5),
    p99_us: percentile(sorted, 0.99),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  await client.close();
}

function required(v: string | undefined, what: string): string {
  if (v === undefined) throw new Error(`${what} is required`);
  return v;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`sdk-load: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
