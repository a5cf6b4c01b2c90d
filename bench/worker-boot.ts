/**
 * Worker boot benchmark: `node --import tsx bench/worker-boot.ts [--quick] [--boots N] [--root DIR]`.
 *
 * How long a new worker takes from spawn to ready to take work: a lane of the no-op app
 * (bench/apps/noop_app.ts, a TypeScript app as users write them, so the worker loads tsx too) with
 * one worker is started — `lane.start()` resolves once the worker has loaded the app, run
 * `onStart` and said READY — then stopped, N times. What it measures is what a pool pays to grow
 * under a burst, and a lazy capability's first request before its handler runs.
 *
 * Rows: a worker thread (`multi`, 1 thread) and a worker process (`process`), each for the
 * TypeScript app and for the same app as plain JavaScript (bench/apps/noop_app.mjs: the
 * difference is tsx's share); and a bare worker thread that only says hello (no anyserve, no
 * app), for what the machine gives a thread at that moment. Boots are interleaved (one of each
 * configuration per round, the order rotating) and the median and the fastest are printed.
 *
 * The code measured is the build (`dist/`, what `npm run build` makes and a replica started from
 * the package runs), not `src/` under tsx. `--root DIR` measures another checkout's build (its
 * `dist/` must have Lane, util/logger and sdk/load-app where this one has them): how the
 * before/after figures in docs/performance.md were taken.
 *
 * `--json` prints one JSON object instead of the table (`npm run bench` runs it that way).
 */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { median } from "./lib/stats.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const argValue = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const quick = process.argv.includes("--quick");
const json = process.argv.includes("--json");
const BOOTS = Number(argValue("--boots") ?? (quick ? 3 : 15));
const ROOT = path.resolve(argValue("--root") ?? path.join(here, ".."));
const APPS = { ts: `${path.join(ROOT, "bench/apps/noop_app.ts")}:app`, js: `${path.join(ROOT, "bench/apps/noop_app.mjs")}:app` };
const GOAL_MS = 150;

type LaneModule = typeof import("../src/execution/lane.js");
const dist = <T>(file: string): Promise<T> => import(pathToFileURL(path.join(ROOT, "dist", file)).href) as Promise<T>;
const { Lane } = await dist<LaneModule>("execution/lane.js");
// `--root` may be a build from before the replica's workers were shared (no createExecution): its
// Lane takes the strategy's name and options instead, so both are given.
const { createExecution } = await dist<Partial<typeof import("../src/execution/index.js")>>("execution/index.js");
const { silentLogger } = await dist<typeof import("../src/util/logger.js")>("util/logger.js");
const { loadApp } = await dist<typeof import("../src/sdk/load-app.js")>("sdk/load-app.js");

/** ms from a new lane's start to its one worker being ready. */
async function laneBoot(strategy: "multi" | "process", spec: string): Promise<number> {
  const app = await loadApp(spec);
  const strategyOptions = {
    env: { app, replicaId: "bench", logger: silentLogger },
    appSpec: spec,
    threads: 1,
    maxThreads: 1,
    graceMs: 1_000,
    startRetries: 1,
    poolIdleMs: 3_600_000,
    workerEnv: [],
  };
  const lane = new Lane({
    entry: app.handlers[0]!,
    handler: 0,
    execution: createExecution?.(strategy, strategyOptions) as never,
    ...({ strategy, strategyOptions } as object),
    queueSize: 10,
    batchSize: 1,
    batchWaitMs: 1,
    idleTimeoutMs: 3_600_000,
    logger: silentLogger,
    onState: () => undefined,
  });
  const t0 = performance.now();
  await lane.start();
  const ms = performance.now() - t0;
  await lane.stop();
  return ms;
}

/** ms from `new Worker` to its first message, for a thread that only says hello. */
function bareThread(): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const w = new Worker(`require("node:worker_threads").parentPort.postMessage(0);`, { eval: true });
    w.once("error", reject);
    w.once("message", () => {
      const ms = performance.now() - t0;
      void w.terminate().then(() => resolve(ms));
    });
  });
}

const configs: [string, () => Promise<number>][] = [
  ["worker thread, TypeScript app", () => laneBoot("multi", APPS.ts)],
  ["worker thread, JavaScript app", () => laneBoot("multi", APPS.js)],
  ["worker process, TypeScript app", () => laneBoot("process", APPS.ts)],
  ["worker process, JavaScript app", () => laneBoot("process", APPS.js)],
  ["bare worker thread (no anyserve, no app)", bareThread],
];

process.stderr.write(`worker boot bench: ${BOOTS} boots of each, interleaved; build at ${path.join(ROOT, "dist")}\n`);
for (const [, boot] of configs) await boot(); // one unmeasured boot each: the parent's own first imports
const times = new Map<string, number[]>(configs.map(([k]) => [k, []]));
for (let round = 0; round < BOOTS; round++) {
  for (let i = 0; i < configs.length; i++) {
    const [name, boot] = configs[(i + round) % configs.length]!;
    times.get(name)!.push(await boot());
  }
}

const rows = configs.map(([name]) => {
  const t = times.get(name)!;
  const goal = name === "worker thread, TypeScript app" ? `≤ ${GOAL_MS} ms` : "";
  return [name, median(t).toFixed(0), Math.min(...t).toFixed(0), goal];
});
const head = ["spawn → ready", `median ms (of ${BOOTS})`, "fastest ms", "goal"];
if (json) {
  const measures = Object.fromEntries([...times].map(([k, v]) => [k, { median: median(v), all: v }]));
  process.stdout.write(`${JSON.stringify({ config: { boots: BOOTS, root: ROOT }, head, rows, measures })}\n`);
} else {
  const width = Math.max(...rows.map((r) => r[0]!.length));
  process.stdout.write(`\n${head[0]!.padEnd(width)}  ${head.slice(1).join("  ")}\n`);
  for (const [name, med, min, goal] of rows)
    process.stdout.write(`${name!.padEnd(width)}  ${med!.padStart(8)}  ${min!.padStart(8)}  ${goal}\n`);
}
