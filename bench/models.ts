/**
 * The ONNX backend benchmark (issue 29): the same model through anyserve's full path (API server →
 * replica → worker → onnxruntime-node, REST JSON) against onnxruntime-node called in this process,
 * ratios within each round.
 *
 * - in-process: one session (one intra-op thread, as the backend's sessions have), `session.run`
 *   on one row after another — the model's own throughput at batch 1;
 * - anyserve batch 1: a replica serving `onnx:` on one worker thread (`multi`, `thread_count` 1)
 *   and no batching, at 32 connections;
 * - anyserve batched: the same with `batch_size 32`, `batch_wait_ms 2`: concurrent requests stacked
 *   along the dynamic batch dimension into one run.
 * The model is an MLP 1024 → 4096 → 1024 (8 M multiply-adds, 32 MB of weights; its run at batch 1 is
 * about 1 ms here, see the table).
 * Goals: batch 1 ≥ 0.8× in-process; batched ≥ 3× unbatched (anyserve batch 1).
 * Run: node --import tsx bench/models.ts [--rounds N] [--seconds S] [--json]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { mlpModel, writeModel } from "../test/helpers/onnx-models.js";
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
const CONNECTIONS = 32;
const WIDTH: [number, number, number] = [1024, 4096, 1024];

installCleanup();
const dir = mkdtempSync(path.join(tmpdir(), "anyserve-bench-models-"));
try {
  await main();
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const file = writeModel(dir, "mlp", "1", mlpModel("batch", 0, WIDTH));
  const row = Float32Array.from({ length: WIDTH[0] }, (_, i) => Math.sin(i));
  const api = await startCli("api-server", ["api-server", "--port", "0"]);
  const replica = (batch: number) =>
    startCli(`replica-b${batch}`, [
      "start",
      "--app",
      `onnx:${file}`,
      "--port",
      "0",
      "--api-server",
      api.ready.url!,
      "--service",
      `mlp-b${batch}`,
      // One worker thread: session.run is synchronous in onnxruntime-node, so on the replica's own
      // event loop (`single`) each run would stop its I/O; on a worker it overlaps with the next request's.
      "--threading-strategy",
      "multi",
      "--thread-count",
      "1",
      ...(batch > 1 ? ["--batch-size", String(batch), "--batch-wait-ms", "2"] : []),
    ]);
  const [one, many] = [await replica(1), await replica(32)];
  // Each replica answers directly here (its own REST port): both serve the same model name, so
  // through the API server a request could reach either. The API server's hop is measured by the
  // main suite; this compares the backend's two modes and the runtime itself.
  const body = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, WIDTH[0]], data: [...row] }] });
  const target = (base: string): Target => ({ url: `${base}/v2/models/mlp/infer`, headers: { "content-type": "application/json" }, body });
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const input = new ort.Tensor("float32", row, [1, WIDTH[0]]);
  const inProcess = async (s: number): Promise<number> => {
    const end = performance.now() + s * 1000;
    let n = 0;
    while (performance.now() < end) {
      await session.run({ x: input });
      n++;
    }
    return n / s;
  };
  // Warm every path once.
  await inProcess(0.5);
  await runLoad(target(one.ready.http!), CONNECTIONS, 0.5);
  await runLoad(target(many.ready.http!), CONNECTIONS, 0.5);
  const per: { inproc: number; b1: number; batched: number; errors: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    const inproc = await inProcess(seconds);
    const b1 = await runLoad(target(one.ready.http!), CONNECTIONS, seconds);
    const batched = await runLoad(target(many.ready.http!), CONNECTIONS, seconds);
    per.push({ inproc, b1: b1.rps, batched: batched.rps, errors: b1.errors + batched.errors });
  }
  await session.release();
  const m = {
    inproc: median(per.map((p) => p.inproc)),
    b1: median(per.map((p) => p.b1)),
    batched: median(per.map((p) => p.batched)),
    b1Ratio: median(per.map((p) => p.b1 / p.inproc)),
    batchRatio: median(per.map((p) => p.batched / p.b1)),
  };
  const title = `ONNX backend (bench/models.ts: MLP ${WIDTH.join("→")}, ${CONNECTIONS} connections, REST JSON to the replica; medians of ${rounds} rounds × ${seconds} s)`;
  const head = ["path", "req/s", "ratio"];
  const rows = [
    ["onnxruntime-node in-process, batch 1", m.inproc.toFixed(0), `1.00 (run ${(1000 / m.inproc).toFixed(2)} ms)`],
    ["anyserve, batch 1", m.b1.toFixed(0), `${m.b1Ratio.toFixed(2)}× in-process`],
    ["anyserve, batch_size 32", m.batched.toFixed(0), `${m.batchRatio.toFixed(2)}× anyserve batch 1`],
  ];
  const goals = [
    `batch 1: ${m.b1Ratio.toFixed(2)}× in-process → goal ≥ 0.8× ${m.b1Ratio >= 0.8 ? "met" : "NOT met"}`,
    `dynamic batching: ${m.batchRatio.toFixed(2)}× unbatched → goal ≥ 3× ${m.batchRatio >= 3 ? "met" : "NOT met"}`,
    `errors: ${per.reduce((a, p) => a + p.errors, 0)}; machine load ${machineInfo().loadAvg1} on ${machineInfo().cpuCount} cores`,
  ];
  if (json)
    process.stdout.write(`${JSON.stringify({ config: { rounds, seconds, connections: CONNECTIONS }, title, head, rows, goals, per })}\n`);
  else console.log(`${title}\n\n${renderPlain(head, rows).text}\n\n${goals.join("\n")}`);
}
