/**
 * The ONNX backend benchmark (issue 29): the same model through anyserve's full path (client →
 * API server → replica → worker thread → onnxruntime-node, REST) against onnxruntime-node called
 * in this process, ratios within each round.
 *
 * Two models, both ~1 ms per run at batch 1 here, which differ in what bounds them:
 * - `recurrent` — an unrolled recurrent cell (160 steps of h = relu(h·W + b), one shared 384×384 W:
 *   576 KB, resident in a core's cache): compute-bound, so its batch-1 line shows anyserve's own
 *   cost — the batch-1 goal is checked on it. Batching gains it only what the runtime gains from
 *   32 rows per run (shown in-process).
 * - `mlp` — an MLP 1024 → 4096 → 1024 (32 MB of weights, streamed from memory on every run):
 *   memory-bound, so its run slows down whenever the other core moves bytes — which serving
 *   traffic does (HTTP, copies, the load generator). Batching is what such models need (one pass
 *   over the weights for many rows): the batching goal is checked on it.
 *
 * Paths per model:
 * - in-process: one session (one intra-op thread, as the backend's sessions have), `session.run`
 *   on one row after another — the model's own throughput at batch 1;
 * - anyserve batch 1: a replica serving `onnx:` on one worker thread (`multi`, `thread_count` 1)
 *   without batching, 32 connections, with binary tensors (the binary extension, as Triton's
 *   perf_analyzer sends) and with JSON tensors (numbers as text, both ways);
 * - anyserve batched: the same with `batch_size 32`, `batch_wait_ms 2`: concurrent requests stacked
 *   along the dynamic batch dimension into one run.
 * Goals: batch 1 ≥ 0.8× in-process; batched ≥ 3× unbatched (both with binary tensors). Each batch-1
 * path's ratio is against the in-process windows measured just before and after it (the machine's
 * speed drifts within seconds; see {@link Round}).
 * Run: node --import tsx bench/models.ts [--rounds N] [--seconds S] [--model recurrent|mlp] [--fast-ingress] [--json]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { mlpModel, recurrentModel, writeModel } from "../test/helpers/onnx-models.js";
import { runLoad, type Target } from "./lib/load.js";
import { installCleanup, startCli, stopAll } from "./lib/procs.js";
import { machineInfo, median } from "./lib/stats.js";
import { renderPlain } from "./lib/table.js";

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const json = process.argv.includes("--json");
const rounds = Number(arg("--rounds", "3"));
const seconds = Number(arg("--seconds", "2"));
/** The API server behind the fast ingress instead of node:http (less of its CPU per request). */
const fastIngress = process.argv.includes("--fast-ingress");
const CONNECTIONS = 32;

/** A model under test: its bytes and the width of its one input row. */
interface BenchModel {
  name: string;
  label: string;
  bytes: Buffer;
  width: number;
  /** Which goal this model's figures are checked against. */
  goals: "batch1" | "batching";
}

const ALL_MODELS: BenchModel[] = [
  {
    name: "recurrent",
    label: "recurrent cell 384×384 ×160 steps (cache-resident)",
    bytes: recurrentModel(384, 160),
    width: 384,
    goals: "batch1",
  },
  {
    name: "mlp",
    label: "MLP 1024→4096→1024 (32 MB of weights, memory-bound)",
    bytes: mlpModel("batch", 0, [1024, 4096, 1024]),
    width: 1024,
    goals: "batching",
  },
];

/** `--model <name>` measures that model only. */
const only = arg("--model", "");
const MODELS = only ? ALL_MODELS.filter((m) => m.name === only) : ALL_MODELS;
if (MODELS.length === 0) throw new Error(`--model: expected one of ${ALL_MODELS.map((m) => m.name).join(", ")}, got '${only}'`);

/** The batched replica's `batch_size`, and the rows of the in-process batched run. */
const BATCH = 32;
const PATHS = ["b1Binary", "b1Json", "batchedBinary", "batchedJson"] as const;
type PathName = (typeof PATHS)[number];
/**
 * One round's figures. The machine's speed drifts by 10–20 % within seconds here (a VM: the
 * in-process loop alone measured 789–979 runs/s in consecutive 2 s windows), so each batch-1
 * path is compared with the in-process rate measured right around it: `inprocAround[path]` is the
 * mean of the in-process windows just before and just after that path's load.
 */
type Round = {
  inproc: number;
  inprocAround: Record<"b1Binary" | "b1Json", number>;
  inprocBatched: number;
  errors: number;
} & Record<PathName, number>;

installCleanup();
const dir = mkdtempSync(path.join(tmpdir(), "anyserve-bench-models-"));
try {
  await main();
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const api = await startCli("api-server", ["api-server", "--port", "0", ...(fastIngress ? ["--fast-ingress"] : [])]);
  const results = [];
  for (const model of MODELS) results.push({ model, per: await measure(model, api.ready.url!) });
  const head = ["model", "path", "req/s", "ratio"];
  const rows: string[][] = [];
  const goals: string[] = [];
  let errors = 0;
  for (const { model, per } of results) {
    const med = (f: (p: Round) => number) => median(per.map(f));
    const inproc = med((p) => p.inproc);
    const b1Ratio = med((p) => p.b1Binary / p.inprocAround.b1Binary);
    const batchRatio = med((p) => p.batchedBinary / p.b1Binary);
    rows.push(
      [model.label, "onnxruntime-node in-process, batch 1", inproc.toFixed(0), `1.00 (run ${(1000 / inproc).toFixed(2)} ms)`],
      ["", "anyserve, batch 1, binary tensors", med((p) => p.b1Binary).toFixed(0), `${b1Ratio.toFixed(2)}× in-process`],
      [
        "",
        "anyserve, batch 1, JSON tensors",
        med((p) => p.b1Json).toFixed(0),
        `${med((p) => p.b1Json / p.inprocAround.b1Json).toFixed(2)}× in-process`,
      ],
      [
        "",
        "onnxruntime-node in-process, 32 rows per run",
        med((p) => p.inprocBatched).toFixed(0),
        `${med((p) => p.inprocBatched / p.inproc).toFixed(2)}× batch 1 (the runtime's own batching gain)`,
      ],
      ["", "anyserve, batch_size 32, binary tensors", med((p) => p.batchedBinary).toFixed(0), `${batchRatio.toFixed(2)}× batch 1 binary`],
      [
        "",
        "anyserve, batch_size 32, JSON tensors",
        med((p) => p.batchedJson).toFixed(0),
        `${med((p) => p.batchedJson / p.b1Json).toFixed(2)}× batch 1 JSON`,
      ],
    );
    // The batch-1 goal is about anyserve's own cost, which the compute-bound model shows; the
    // batching goal is about what batching buys, which a memory-bound model shows (a compute-bound
    // one gains only what its runtime gains from batching: the in-process 32-row line).
    const says = (ok: boolean, goalModel: boolean) => (goalModel ? (ok ? "met" : "NOT met") : "(goal checked on the other model)");
    goals.push(
      `${model.name}: batch 1 ${b1Ratio.toFixed(2)}× in-process → goal ≥ 0.8× ${says(b1Ratio >= 0.8, model.goals === "batch1")}; ` +
        `batching ${batchRatio.toFixed(2)}× unbatched → goal ≥ 3× ${says(batchRatio >= 3, model.goals === "batching")}`,
    );
    errors += per.reduce((a, p) => a + p.errors, 0);
  }
  goals.push(`errors: ${errors}; machine load ${machineInfo().loadAvg1} on ${machineInfo().cpuCount} cores`);
  const title = `ONNX backend (bench/models.ts: ${CONNECTIONS} connections, REST through the API server${fastIngress ? " (fast ingress)" : ""}; medians of ${rounds} rounds × ${seconds} s)`;
  if (json) {
    const per = Object.fromEntries(results.map((r) => [r.model.name, r.per]));
    process.stdout.write(`${JSON.stringify({ config: { rounds, seconds, connections: CONNECTIONS }, title, head, rows, goals, per })}\n`);
  } else console.log(`${title}\n\n${renderPlain(head, rows).text}\n\n${goals.join("\n")}`);
}

/** Every path of one model, `rounds` times; each replica reached by its own capability through the API server. */
async function measure(model: BenchModel, apiUrl: string): Promise<Round[]> {
  // Two copies of the model under two names: {model: <name>-b1} and {model: <name>-b32}.
  const files = {
    b1: writeModel(dir, `${model.name}-b1`, "1", model.bytes),
    batched: writeModel(dir, `${model.name}-b32`, "1", model.bytes),
  };
  const replica = (file: string, batch: number) =>
    startCli(`${model.name}-b${batch}`, [
      "start",
      "--app",
      `onnx:${file}`,
      "--port",
      "0",
      "--api-server",
      apiUrl,
      "--service",
      `${model.name}-b${batch}`,
      // One worker thread: session.run is synchronous in onnxruntime-node, so on the replica's own
      // event loop (`single`) each run would stop its I/O; on a worker it overlaps with the next request's.
      "--threading-strategy",
      "multi",
      "--thread-count",
      "1",
      ...(batch > 1 ? ["--batch-size", String(batch), "--batch-wait-ms", "2"] : []),
    ]);
  const replicas = [await replica(files.b1, 1), await replica(files.batched, BATCH)];
  const row = Float32Array.from({ length: model.width }, (_, i) => Math.sin(i));
  const url = (suffix: string) => `${apiUrl}/v2/models/${model.name}-${suffix}/infer`;
  const jsonBody = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, model.width], data: [...row] }] });
  // The binary tensor extension: the JSON header names the tensors, their bytes follow; the
  // answer's output comes back the same way.
  const head = JSON.stringify({
    inputs: [{ name: "x", datatype: "FP32", shape: [1, model.width], parameters: { binary_data_size: row.byteLength } }],
    parameters: { binary_data_output: true },
  });
  const binaryBody = Buffer.concat([Buffer.from(head), Buffer.from(row.buffer)]);
  const jsonTarget = (suffix: string): Target => ({ url: url(suffix), headers: { "content-type": "application/json" }, body: jsonBody });
  const binaryTarget = (suffix: string): Target => ({
    url: url(suffix),
    headers: { "content-type": "application/octet-stream", "inference-header-content-length": String(Buffer.byteLength(head)) },
    body: binaryBody,
  });
  const targets: Record<PathName, Target> = {
    b1Binary: binaryTarget("b1"),
    b1Json: jsonTarget("b1"),
    batchedBinary: binaryTarget("b32"),
    batchedJson: jsonTarget("b32"),
  };
  const session = await ort.InferenceSession.create(files.b1, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const input = new ort.Tensor("float32", row, [1, model.width]);
  const stacked = new Float32Array(BATCH * model.width);
  for (let i = 0; i < BATCH; i++) stacked.set(row, i * model.width);
  const inputBatched = new ort.Tensor("float32", stacked, [BATCH, model.width]);
  /** Rows per second of `session.run` on `feed` (`rows` rows per run) for `s` seconds. */
  const inProcess = async (s: number, feed = input, rows = 1): Promise<number> => {
    const end = performance.now() + s * 1000;
    let n = 0;
    while (performance.now() < end) {
      await session.run({ x: feed });
      n += rows;
    }
    return n / s;
  };
  // Warm every path. A fresh replica serves slower for its first seconds under load: V8 is still
  // compiling its hot code (`--trace-opt` here: 80–100 optimized functions a second for the first
  // 5 s of load, a few a second from 8 s on), and those compiler threads take CPU from the worker
  // (runnable but waiting 13–18 % of the time early, 1–3 % later). Measured with the recurrent
  // model: 545 → 760 req/s over the first 4 s, ~800 from then on; its session.run took 1.34–1.44 ms
  // early and 1.03–1.05 ms once warm. So each replica gets 4 s of load, and then a whole round
  // runs untimed (round -1): with 6 s of warm-up alone the first timed round still read 0.76× where
  // the next four read 0.80–1.01×.
  await inProcess(1);
  for (const t of Object.values(targets)) await runLoad(t, CONNECTIONS, 2);
  const per: Round[] = [];
  for (let r = -1; r < rounds; r++) {
    const round: Round = {
      inproc: 0,
      inprocAround: { b1Binary: 0, b1Json: 0 },
      inprocBatched: 0,
      errors: 0,
      b1Binary: 0,
      b1Json: 0,
      batchedBinary: 0,
      batchedJson: 0,
    };
    const load = async (k: PathName): Promise<void> => {
      const res = await runLoad(targets[k], CONNECTIONS, seconds);
      round[k] = res.rps;
      round.errors += res.errors;
    };
    // In-process windows of half a round's length around each batch-1 path: before, between, after.
    const windows = [await inProcess(seconds / 2)];
    await load("b1Binary");
    windows.push(await inProcess(seconds / 2));
    await load("b1Json");
    windows.push(await inProcess(seconds / 2));
    round.inproc = median(windows);
    round.inprocAround = { b1Binary: (windows[0]! + windows[1]!) / 2, b1Json: (windows[1]! + windows[2]!) / 2 };
    round.inprocBatched = await inProcess(seconds, inputBatched, BATCH);
    await load("batchedBinary");
    await load("batchedJson");
    if (r >= 0) per.push(round);
  }
  await session.release();
  // This model's replicas stop before the next model is measured: idle, they would still hold memory.
  for (const r of replicas) r.child.kill("SIGTERM");
  await Promise.all(replicas.map((r) => (r.child.exitCode === null ? new Promise((done) => r.child.once("exit", done)) : undefined)));
  return per;
}
