/**
 * `npm run bench`: the benchmark suite. Prints one table and writes bench/results/<date>.json.
 *
 * Method, and why:
 * - Every server runs in a child process; autocannon runs here. A load generator sharing the
 *   server's event loop would measure itself.
 * - Interleaved rounds (round 1 runs every scenario once, then round 2…), and each figure is
 *   reported as a ratio to the bare node:http server *of the same round*. On a shared 2-core VM the
 *   absolute throughput drifts by tens of percent within an afternoon; only same-round ratios hold.
 *   The scenario order rotates each round so no scenario always runs first (or right after another).
 * - Medians of 3 rounds, 50 connections, 1 s warm-up before every 4 s measurement.
 * - Latency at concurrency 1 (one connection, one request at a time) shows the added cost of each
 *   hop per request, without queueing; its rounds are interleaved too.
 * - CPU µs per request of the serving processes (from /proc): the cost that decides throughput
 *   once the cores are busy, and one that does not depend on the load generator.
 *
 * `--quick` (1 round, 1 s runs) is a smoke test of the suite itself; its figures mean nothing.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { cpuMeter, interferenceMeter, runLoad, type Interference, type LoadResult } from "./lib/load.js";
import { ROOT, installCleanup, stopAll } from "./lib/procs.js";
import { requestBody, startScenarios, type Scenario } from "./lib/scenarios.js";
import { machineInfo, median } from "./lib/stats.js";
import { renderMarkdown, renderText, type Row } from "./lib/table.js";

const quick = process.argv.includes("--quick");
const CONFIG = {
  connections: 50,
  seconds: quick ? 1 : 4,
  warmupSeconds: quick ? 0.5 : 1,
  rounds: quick ? 1 : 3,
  c1Seconds: quick ? 1 : 2,
  c1WarmupSeconds: 0.5,
};

/** One measurement of one scenario in one round. */
interface Sample extends LoadResult {
  round: number;
  scenario: string;
  /** Server-side CPU per completed request (all processes of the scenario), null without /proc. */
  cpuUsPerReq: number | null;
  /** The same, per process of the scenario (e.g. api-server vs replica): what each hop costs. */
  cpuByProcess: Record<string, number> | null;
  /** CPU used by other processes / stolen by the hypervisor during the measurement. */
  interference: Interference | null;
  /** rps / bare rps of the same round. */
  ratio?: number;
}

/** Above this share of the machine used by others, a measurement is flagged. */
const FOREIGN_LIMIT_PCT = 10;

const log = (line: string): void => { process.stderr.write(`${line}\n`); };

/** Rotates the scenario order by `round` so each one takes every position in turn. */
const rotated = <T>(xs: T[], round: number): T[] => xs.map((_, i) => xs[(i + round) % xs.length]!);

/** Runs every scenario once per round at `connections`, warm-up first; returns all samples. */
async function rounds(scenarios: Scenario[], connections: number, seconds: number, warmup: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let round = 1; round <= CONFIG.rounds; round++) {
    const inRound: Sample[] = [];
    for (const s of rotated(scenarios, round - 1)) {
      await runLoad(s, connections, warmup);
      const cpu = cpuMeter(s.procs);
      const others = interferenceMeter();
      const r = await runLoad(s, connections, seconds);
      const used = cpu();
      const interference = others();
      const byProcess = used === null || r.requests === 0 ? null : Object.fromEntries(Object.entries(used).map(([k, us]) => [k, us / r.requests]));
      const total = byProcess && Object.values(byProcess).reduce((a, b) => a + b, 0);
      const sample: Sample = { round, scenario: s.id, ...r, cpuUsPerReq: total, cpuByProcess: byProcess, interference };
      inRound.push(sample);
      log(`  c=${connections} round ${round} ${s.id.padEnd(11)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${(r.p50Us / 1000).toFixed(2)} ms  p99 ${(r.p99Us / 1000).toFixed(2)} ms` +
        `  cpu ${sample.cpuUsPerReq?.toFixed(0) ?? "–"} µs/req${r.errors ? `  ERRORS ${r.errors}` : ""}` +
        (interference ? `  others ${interference.foreignPct}% steal ${interference.stealPct}%` : ""));
    }
    const bare = inRound.find((x) => x.scenario === "bare")!;
    for (const x of inRound) x.ratio = x.rps / bare.rps;
    samples.push(...inRound);
  }
  return samples;
}

async function main(): Promise<void> {
  installCleanup();
  const started = Date.now();
  const machine = machineInfo();
  const body = requestBody();
  log(`anyserve bench: ${machine.cpuCount} × ${machine.cpuModel}, node ${machine.node}, load ${machine.loadAvg1}${quick ? " (--quick: figures mean nothing)" : ""}`);
  const { scenarios, unmeasured } = await startScenarios(body, log);
  log(`${scenarios.length} scenarios, ${CONFIG.rounds} interleaved rounds, ${CONFIG.connections} connections, ${CONFIG.warmupSeconds} s warm-up + ${CONFIG.seconds} s each`);

  const loaded = await rounds(scenarios, CONFIG.connections, CONFIG.seconds, CONFIG.warmupSeconds);
  const single = await rounds(scenarios, 1, CONFIG.c1Seconds, CONFIG.c1WarmupSeconds);

  // c=1: added latency = p50 − bare's p50 in the same round, median over rounds.
  const c1Added = (id: string): number => median(single.filter((x) => x.scenario === id).map((x) =>
    x.p50Us - single.find((b) => b.scenario === "bare" && b.round === x.round)!.p50Us));

  const medians: Record<string, Record<string, unknown>> = {};
  const splits: string[] = [];
  const rows: Row[] = scenarios.map((s) => {
    const mine = loaded.filter((x) => x.scenario === s.id);
    const of = (f: (x: Sample) => number): number => median(mine.map(f));
    const cpus = mine.map((x) => x.cpuUsPerReq).filter((x): x is number => x !== null);
    const errors = mine.reduce((n, x) => n + x.errors, 0) + single.filter((x) => x.scenario === s.id).reduce((n, x) => n + x.errors, 0);
    const row: Row = {
      label: s.label,
      rps: of((x) => x.rps),
      p50Ms: of((x) => x.p50Us) / 1000,
      p99Ms: of((x) => x.p99Us) / 1000,
      ratio: of((x) => x.ratio!),
      cpuUs: cpus.length ? median(cpus) : null,
      c1P50Us: median(single.filter((x) => x.scenario === s.id).map((x) => x.p50Us)),
      c1AddedUs: s.id === "bare" ? 0 : c1Added(s.id),
      ...(errors ? { note: `${errors} errors` } : {}),
    };
    // Per-process CPU: in the full path, the api-server's share is the gateway hop's own cost.
    const cpuByProcess = Object.fromEntries(Object.keys(s.procs).map((name) =>
      [name, median(mine.map((x) => x.cpuByProcess?.[name]).filter((x): x is number => x !== undefined))]));
    if (Object.keys(cpuByProcess).length > 1 && row.cpuUs !== null) {
      splits.push(`${s.id}: ${Object.entries(cpuByProcess).map(([n, us]) => `${n} ${us.toFixed(0)}`).join(" + ")}`);
    }
    medians[s.id] = { rps: row.rps, p50Ms: row.p50Ms, p99Ms: row.p99Ms, ratio: row.ratio, cpuUsPerReq: row.cpuUs, cpuByProcess, c1P50Us: row.c1P50Us, c1AddedUs: row.c1AddedUs, errors };
    return row;
  });
  rows.push(...unmeasured.map((u) => ({ label: u.label, note: u.note })));

  const seconds = Math.round((Date.now() - started) / 1000);
  console.log(`\nanyserve bench — ${machine.date}, ${machine.cpuCount} × ${machine.cpuModel}, node ${machine.node}, commit ${machine.gitCommit?.slice(0, 10) ?? "?"}${machine.gitDirty ? " (+ uncommitted changes)" : ""}`);
  console.log(`${CONFIG.connections} connections, median of ${CONFIG.rounds} interleaved rounds of ${CONFIG.seconds} s; × bare = req/s ÷ bare req/s of the same round; ` +
    `CPU = server processes' CPU per request; c=1 = one connection, p50 and added p50 vs bare\n`);
  console.log(renderText(rows));
  if (splits.length) console.log(`\nCPU µs/req by process (c=${CONFIG.connections}, medians): ${splits.join("; ")}`);
  // Metrics cost: the full path with metrics on vs off, same rounds (issue 7's bar: ≤ 10 % loss).
  const on = loaded.filter((x) => x.scenario === "rest-infer");
  const off = loaded.filter((x) => x.scenario === "rest-infer-nometrics");
  if (on.length && off.length) {
    const perRound = on.map((x) => x.rps / off.find((y) => y.round === x.round)!.rps);
    console.log(`\nmetrics on ÷ off (full path REST /infer, same round, median of ${perRound.length}): ${median(perRound).toFixed(3)}`);
  }
  // Other processes competing for the cores shift every figure, and not all by the same factor.
  const disturbed = [...loaded, ...single].filter((x) => x.interference && x.interference.foreignPct + x.interference.stealPct > FOREIGN_LIMIT_PCT);
  if (disturbed.length) {
    const worst = Math.max(...disturbed.map((x) => x.interference!.foreignPct + x.interference!.stealPct));
    console.log(`\nwarning: in ${disturbed.length} of ${loaded.length + single.length} measurements other processes (or VM steal) used more than ` +
      `${FOREIGN_LIMIT_PCT}% of the machine (worst ${worst.toFixed(0)}%): the figures are disturbed — rerun on a quiet machine`);
  }

  const file = path.join(ROOT, "bench", "results", `${machine.date.replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({
    machine,
    config: { ...CONFIG, quick, bodyBytes: body.length, loadGenerator: "autocannon (programmatic, in the parent process)" },
    scenarios: scenarios.map((s) => ({ id: s.id, label: s.label, path: new URL(s.url).pathname, headers: s.headers, processes: Object.keys(s.procs) })),
    unmeasured,
    medians,
    rounds: loaded,
    c1Rounds: single,
    markdown: renderMarkdown(rows),
    loadAvg1AtEnd: Math.round(os.loadavg()[0]! * 100) / 100,
    durationSeconds: seconds,
  }, null, 2)}\n`);
  console.log(`\nraw rounds and medians: ${path.relative(process.cwd(), file)} (suite took ${seconds} s)`);
}

main().then(
  async () => { await stopAll(); process.exit(0); },
  async (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    await stopAll();
    process.exit(1);
  },
);
