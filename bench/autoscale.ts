/**
 * Autoscaling benchmark: `node --import tsx bench/autoscale.ts [--quick] [--json]`.
 *
 * A load step from 1× to 4× one replica's capacity, against `anyserve up` (the build) with one
 * autoscaled service: test/fixtures/autoscale_app.ts holds each request `WORK_MS` (50) and runs
 * one at a time per replica (`single`), so a replica serves 20 requests/s and every request beyond
 * that queues. The load is open-loop (paced: requests go out at the rate whatever the answers do,
 * as users arrive), over keep-alive connections, from this process.
 *
 * The service: `min_replicas 1, max_replicas 6, target_ongoing_requests 2` (Ray's default: at 1×
 * a replica runs one request and about one waits, so 1× keeps one replica and 4× needs at least
 * 4), `metrics_interval_s 0.25, look_back_period_s 2, upscale_delay_s 1` —
 * seconds instead of Ray's 10/30/30 so the run takes ~30 s (with Ray's defaults the transition
 * lasts 30 s + look-back longer, its shape the same); `downscale_delay_s 60`: no shrinking during
 * the run. Three phases, each reported with its requests, errors (any answer but 200, or none
 * within 30 s) and latency percentiles:
 * - `1×`: 20 req/s for 6 s (the replica at its capacity, within the target);
 * - `step → 4 serving`: 80 req/s from the step until 4 replicas serve — the transition, whose
 *   length (the look-back filling, the upscale delay, processes starting) is the time to target;
 * - `4× after`: 8 s more at 80 req/s, the queue built during the transition draining.
 * Replicas serving are read off the management API every 100 ms.
 *
 * `--json` prints one JSON object instead of the table (`npm run bench` runs it that way).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { installCleanup, ROOT, startCli, stopAll } from "./lib/procs.js";
import { percentile } from "./lib/stats.js";

const quick = process.argv.includes("--quick");
const json = process.argv.includes("--json");
const WORK_MS = 50;
const CAPACITY = 1000 / WORK_MS;
const BEFORE_S = quick ? 2 : 6;
const AFTER_S = quick ? 2 : 8;
const TARGET_REPLICAS = 4;
const BODY = JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["x"] }] });

interface Sample {
  /** ms since the load started, when sent. */
  at: number;
  ms: number;
  status: number;
}

/** Sends at `rate()` requests per second until stopped; every answer (or none in 30 s) is kept. */
class PacedLoad {
  readonly samples: Sample[] = [];
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  readonly #pending = new Set<Promise<void>>();
  readonly #t0 = performance.now();
  #sent = 0;
  #rate = 0;
  #rateSince = 0;
  #sentBefore = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(readonly url: URL) {
    this.#timer = setInterval(() => this.#tick(), 2);
  }

  now(): number {
    return performance.now() - this.#t0;
  }

  setRate(rps: number): void {
    this.#sentBefore = this.#sent;
    this.#rateSince = this.now();
    this.#rate = rps;
  }

  async stop(): Promise<Sample[]> {
    clearInterval(this.#timer);
    await Promise.all(this.#pending);
    this.#agent.destroy();
    return this.samples;
  }

  #tick(): void {
    const due = this.#sentBefore + Math.floor(((this.now() - this.#rateSince) * this.#rate) / 1000);
    while (this.#sent < due) {
      this.#sent++;
      const p = this.#one().finally(() => this.#pending.delete(p));
      this.#pending.add(p);
    }
  }

  #one(): Promise<void> {
    const at = this.now();
    return new Promise((resolve) => {
      const done = (status: number): void => {
        this.samples.push({ at, ms: this.now() - at, status });
        resolve();
      };
      const req = http.request(
        this.url,
        { method: "POST", agent: this.#agent, headers: { "content-type": "application/json", "x-capability-type": "work" } },
        (res) => res.resume().on("end", () => done(res.statusCode ?? 0)),
      );
      req.setTimeout(30_000, () => {
        req.destroy();
        done(0);
      });
      req.on("error", () => done(-1));
      req.end(BODY);
    });
  }
}

async function serving(url: string): Promise<number> {
  const res = await fetch(`${url}/api/services/work`);
  const view = (await res.json()) as { autoscaling: { running: number } };
  return view.autoscaling.running;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function row(name: string, samples: Sample[], fromMs: number, toMs: number, replicas: string): string[] {
  const within = samples.filter((s) => s.at >= fromMs && s.at < toMs);
  const ms = within.map((s) => s.ms).sort((a, b) => a - b);
  const errors = within.filter((s) => s.status !== 200).length;
  const f = (q: number) => (ms.length ? percentile(ms, q).toFixed(0) : "–");
  return [name, ((toMs - fromMs) / 1000).toFixed(1), String(within.length), String(errors), f(0.5), f(0.99), replicas];
}

async function main(): Promise<void> {
  installCleanup();
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-bench-autoscale-"));
  const file = path.join(dir, "anyserve.yaml");
  const autoscaling = {
    min_replicas: 1,
    max_replicas: 6,
    target_ongoing_requests: 2,
    metrics_interval_s: 0.25,
    look_back_period_s: 2,
    upscale_delay_s: 1,
    downscale_delay_s: 60,
  };
  const app = `${path.join(ROOT, "test/fixtures/autoscale_app.ts")}:app`;
  writeFileSync(file, JSON.stringify({ api_server: { port: 0, grpc_port: null }, services: { work: { app, autoscaling } } }));
  process.env.WORK_MS = String(WORK_MS);
  try {
    const { ready } = await startCli("up", ["up", file, "--no-token"]);
    const url = ready.url!;
    const load = new PacedLoad(new URL("/infer", url));
    load.setRate(CAPACITY);
    await new Promise((r) => setTimeout(r, BEFORE_S * 1000));
    const atStep = await serving(url);
    const step = load.now();
    load.setRate(4 * CAPACITY);
    let most = atStep;
    await until(`${TARGET_REPLICAS} replicas serving`, async () => (most = Math.max(most, await serving(url))) >= TARGET_REPLICAS, 60_000);
    const reached = load.now();
    await new Promise((r) => setTimeout(r, AFTER_S * 1000));
    const end = load.now();
    const atEnd = await serving(url);
    const samples = await load.stop();
    const head = ["phase", "seconds", "requests", "errors", "p50 ms", "p99 ms", "replicas serving"];
    const rows = [
      row(`1× (${CAPACITY} req/s)`, samples, 0, step, String(atStep)),
      row(`step to 4× (${4 * CAPACITY} req/s) → ${TARGET_REPLICAS} serving`, samples, step, reached, `${atStep} → ${TARGET_REPLICAS}`),
      row("4× after", samples, reached, end, String(atEnd)),
    ];
    const toTarget = ((reached - step) / 1000).toFixed(1);
    const goals = [
      `time from the step to ${TARGET_REPLICAS} replicas serving: ${toTarget} s (look-back 2 s, upscale delay 1 s, replica starts)`,
    ];
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ config: { autoscaling, workMs: WORK_MS }, head, rows, goals, timeToTargetS: Number(toTarget) })}\n`,
      );
    } else {
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const r of [head, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join("  ")}\n`);
      process.stdout.write(`\n${goals.join("\n")}\n`);
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
