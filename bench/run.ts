/**
 * `npm run bench`: the benchmark suite. Prints one table (plus the small tables of the execution
 * and objects benchmarks) and writes bench/results/<date>.json.
 *
 * Method, and why:
 * - Every server runs in a child process. The HTTP load is wrk's when scripts/bench-tools.mjs could
 *   fetch it (the generator of the reference figures; C, so it leaves more of the 2 shared cores to
 *   the servers), else autocannon's, run here; the gRPC and SDK load generators run in child
 *   processes of their own. A load generator sharing the server's event loop would measure itself.
 * - Interleaved rounds (round 1 runs every scenario once, then round 2…, the order rotating), and
 *   each figure is reported as a ratio to its baseline *of the same round* — bare node:http for the
 *   HTTP rows, a bare grpc-js server for gRPC, the `single` replica for the worker-thread hop, the
 *   SDK calling the bare server for the SDK's direct path. On a shared 2-core VM the absolute
 *   throughput drifts by tens of percent within an afternoon; only same-round ratios hold.
 * - Every scenario is warmed for 1 s as soon as its processes are up, before any is measured:
 *   a Node server whose hot path first ran after ~15 s idle was measured here 30–80 % slower per
 *   request, for up to tens of seconds of load, than the same server loaded right after start
 *   (interleaved A/B, same machine); bare node:http did not show it.
 * - Medians of 3 rounds, 50 connections, 3 s per measurement (wrk takes whole seconds) after a
 *   warm-up (0.25 s; 0.5 s before a scenario's first measurement).
 * - Latency at concurrency 1 (one connection, one request at a time) shows the added cost of each
 *   hop per request, without queueing; its rounds are interleaved too.
 * - CPU µs per request of the serving processes (from /proc): the cost that decides throughput
 *   once the cores are busy, and one that does not depend on the load generator.
 * - Then, with every server stopped, bench/execution.ts, bench/worker-boot.ts, bench/autoscale.ts and bench/objects.ts
 *   in turn.
 *
 * `--quick` (1 round, 1 s runs) is a smoke test of the suite itself; its figures mean nothing.
 * `--only id,id…` measures just those scenarios (and their baselines; every server still starts,
 * and the execution, worker-boot and objects benchmarks are skipped): for looking at one row while changing it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, installCleanup, stopAll, unlessExiting } from "./lib/procs.js";
import { buildReport } from "./lib/report.js";
import { runRounds, warmAll, type RoundsConfig } from "./lib/rounds.js";
import { requestBody, type Entry, type Scenario } from "./lib/scenario.js";
import { startScenarios } from "./lib/scenarios.js";
import { machineInfo } from "./lib/stats.js";
import { runSubBenches, subBenchSpecs } from "./lib/sub-benches.js";
import { renderMarkdown, renderText } from "./lib/table.js";
import { wrkTool } from "./lib/wrk.js";

const quick = process.argv.includes("--quick");
const onlyArg = process.argv.indexOf("--only");
const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? "").split(",").filter(Boolean)) : undefined;
const rounds = quick ? 1 : 3;
// Sized so that the whole suite (up to 16 scenarios, then the execution and objects benchmarks)
// stays under 5 minutes with the build on a 2-core machine.
const LOADED: RoundsConfig = { connections: 50, seconds: quick ? 1 : 3, firstWarmup: 0.5, warmup: 0.25, rounds };
const SINGLE: RoundsConfig = { connections: 1, seconds: 0.75, firstWarmup: 0.5, warmup: 0.25, rounds };

/** Above this share of the machine used by others, a measurement is flagged. */
const FOREIGN_LIMIT_PCT = 10;

const t0 = Date.now();
/** Progress on stderr, each line with the seconds since the start (the table goes to stdout). */
const log = (line: string): void => {
  process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s ${line}\n`);
};

async function main(): Promise<void> {
  installCleanup();
  const started = Date.now();
  const machine = machineInfo();
  const body = requestBody();
  log(
    `anyserve bench: ${machine.cpuCount} × ${machine.cpuModel}, node ${machine.node}, load ${machine.loadAvg1}${quick ? " (--quick: figures mean nothing)" : ""}`,
  );
  const all = await startScenarios(body, log);
  const { entries, scenarios } = only ? onlyThese(all, only) : all;
  const http = scenarios.find((s) => s.generator === "wrk" || s.generator === "autocannon");
  log(
    `HTTP load generator: ${http?.generator === "wrk" ? `wrk (${wrkTool()!.bin})` : "autocannon (wrk not found: see scripts/bench-tools.mjs)"}`,
  );
  await warmAll(scenarios, LOADED.connections, quick ? 0.25 : 1);
  log(
    `${scenarios.length} scenarios, ${rounds} interleaved rounds at ${LOADED.connections} connections, then ${scenarios.filter((s) => s.c1).length} of them at 1 ` +
      `(startup took ${Math.round((Date.now() - started) / 1000)} s)`,
  );

  const loaded = await runRounds(scenarios, LOADED, log);
  const single = await runRounds(
    scenarios.filter((s) => s.c1),
    SINGLE,
    log,
  );
  await stopAll(); // the execution and objects benchmarks get the machine to themselves
  log("scenario servers stopped");
  const subs = only ? [] : await runSubBenches(subBenchSpecs(quick), log);
  await unlessExiting(); // Ctrl-C during the run: no table, no results file of a broken run

  const report = buildReport(entries, loaded, single, LOADED.connections);
  const seconds = Math.round((Date.now() - started) / 1000);
  console.log(
    `\nanyserve bench — ${machine.date}, ${machine.cpuCount} × ${machine.cpuModel}, node ${machine.node}, commit ${machine.gitCommit?.slice(0, 10) ?? "?"}${machine.gitDirty ? " (+ uncommitted changes)" : ""}`,
  );
  console.log(
    `${LOADED.connections} connections, median of ${rounds} interleaved rounds of ${LOADED.seconds} s; ratio = req/s ÷ the req/s of the row named in "vs", same round ` +
      `(† = a different load generator: its own cost is in the ratio); CPU = server processes' CPU per request; c=1 = one connection, p50 and its difference to the "vs" row's\n`,
  );
  console.log(renderText(report.rows));
  console.log(`\n${report.lines.join("\n")}`);
  for (const s of subs) console.log(`\n${s.text}`);
  // Other processes competing for the cores shift every figure, and not all by the same factor.
  const disturbed = [...loaded, ...single].filter(
    (x) => x.interference && x.interference.foreignPct + x.interference.stealPct > FOREIGN_LIMIT_PCT,
  );
  if (disturbed.length) {
    const worst = Math.max(...disturbed.map((x) => x.interference!.foreignPct + x.interference!.stealPct));
    console.log(
      `\nwarning: in ${disturbed.length} of ${loaded.length + single.length} measurements other processes (or VM steal) used more than ` +
        `${FOREIGN_LIMIT_PCT}% of the machine (worst ${worst.toFixed(0)}%): the figures are disturbed — rerun on a quiet machine`,
    );
  }

  const file = path.join(ROOT, "bench", "results", `${machine.date.replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        machine,
        config: {
          quick,
          only: only ? [...only] : undefined,
          loaded: LOADED,
          single: SINGLE,
          bodyBytes: body.length,
          loadGenerators: `${http?.generator === "wrk" ? "wrk -t 1 (loaded runs), autocannon (c=1 runs, warm-ups)" : "autocannon (programmatic, in the parent process)"}; grpc-js (bench/clients/grpc-load.ts); SDK (bench/clients/sdk-load.ts)`,
        },
        scenarios: entries.map((e) =>
          "note" in e
            ? e
            : {
                id: e.id,
                label: e.label,
                baseline: e.baseline,
                generator: e.generator,
                target: e.target,
                headers: e.headers,
                processes: Object.keys(e.procs),
                c1: e.c1,
              },
        ),
        medians: report.medians,
        derived: report.derived,
        rounds: loaded,
        c1Rounds: single,
        markdown: renderMarkdown(report.rows),
        subBenches: Object.fromEntries(
          subs.map((s) => [s.id, { title: s.title, seconds: s.seconds, markdown: s.markdown, error: s.error, result: s.result }]),
        ),
        loadAvg1AtEnd: Math.round(os.loadavg()[0]! * 100) / 100,
        durationSeconds: seconds,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nraw rounds and medians: ${path.relative(process.cwd(), file)} (suite took ${seconds} s)`);
}

/** The scenarios named in `--only`, with the baselines their ratios need. */
function onlyThese(all: { entries: Entry[]; scenarios: Scenario[] }, ids: Set<string>): { entries: Entry[]; scenarios: Scenario[] } {
  if (ids.size === 0) throw new Error(`--only needs scenario ids, comma-separated (there are: ${all.entries.map((e) => e.id).join(", ")})`);
  const unknown = [...ids].filter((id) => !all.entries.some((e) => e.id === id));
  if (unknown.length) throw new Error(`--only: no scenario ${unknown.join(", ")} (there are: ${all.entries.map((e) => e.id).join(", ")})`);
  const keep = new Set(ids);
  for (const s of all.scenarios) if (ids.has(s.id)) keep.add(s.baseline).add("bare");
  return { entries: all.entries.filter((e) => keep.has(e.id)), scenarios: all.scenarios.filter((s) => keep.has(s.id)) };
}

main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  async (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await stopAll();
    process.exit(1);
  },
);
