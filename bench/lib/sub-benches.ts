/**
 * The benchmarks of the execution and objects issues, run by the suite after the HTTP scenarios
 * (whose servers are stopped by then: nothing else runs meanwhile), each as a child process with
 * `--json`: bench/execution.ts (strategies, the lane-level thread hop, batching),
 * bench/worker-boot.ts (a worker's spawn → ready), bench/autoscale.ts (a load step against an
 * autoscaled service) and bench/objects.ts (object handoff through the
 * store vs plain fs, peer fetch). Each reports its
 * own small table, whose ratios are taken within its own rounds.
 */
import path from "node:path";
import { ROOT, runScript } from "./procs.js";
import { renderPlain } from "./table.js";

export interface SubBench {
  id: string;
  title: string;
  /** The child's whole JSON report (raw per-round figures included). */
  result: { head: string[]; rows: string[][]; goals?: string[]; [k: string]: unknown } | null;
  error?: string;
  seconds: number;
  text: string;
  markdown: string;
}

interface Spec {
  id: string;
  title: string;
  file: string;
  args: string[];
}

export function subBenchSpecs(quick: boolean): Spec[] {
  return [
    {
      id: "execution",
      title:
        "strategies, thread hop and batching (bench/execution.ts: lane → strategy → task runner, no HTTP; ratios within each round, median)",
      file: "bench/execution.ts",
      args: quick ? ["--quick"] : ["--rounds", "3", "--seconds", "0.6", "--hop-requests", "1000"],
    },
    {
      id: "worker-boot",
      title:
        "worker boot, spawn → ready (bench/worker-boot.ts: a lane of the no-op app with one worker, from the build; median of the boots)",
      file: "bench/worker-boot.ts",
      args: quick ? ["--quick"] : ["--boots", "15"],
    },
    {
      id: "autoscale",
      title:
        "autoscaling under a load step from 1× to 4× one replica's capacity (bench/autoscale.ts: anyserve up, min 1 max 6, target 2, look-back 2 s, upscale delay 1 s; open-loop load)",
      file: "bench/autoscale.ts",
      args: quick ? ["--quick"] : [],
    },
    {
      id: "models",
      title:
        "ONNX backend (bench/models.ts: onnx: replicas through the API server vs onnxruntime-node in-process, two models; ratios within each round, median)",
      file: "bench/models.ts",
      args: quick ? ["--rounds", "1", "--seconds", "0.5"] : ["--rounds", "5", "--seconds", "2"],
    },
    {
      id: "objects",
      title: "object handoff (bench/objects.ts)",
      file: "bench/objects.ts",
      args: quick ? ["--rounds", "1", "--sizes", "1,10"] : ["--rounds", "5"],
    },
  ];
}

/** Runs one after the other; a failing one becomes a note, the suite goes on. */
export async function runSubBenches(specs: Spec[], log: (line: string) => void): Promise<SubBench[]> {
  const out: SubBench[] = [];
  for (const s of specs) {
    const started = Date.now();
    log(`${s.id}: node --import tsx ${s.file} --json ${s.args.join(" ")}`);
    let result: SubBench["result"] = null;
    let error: string | undefined;
    try {
      const stdout = await runScript(s.id, path.join(ROOT, s.file), ["--json", ...s.args], log);
      result = JSON.parse(stdout.trim().split("\n").pop()!) as NonNullable<SubBench["result"]>;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      log(`${s.id} failed: ${error}`);
    }
    const table = result ? renderPlain(result.head, result.rows) : undefined;
    const goals = result?.goals?.length ? `\n\n${result.goals.join("\n")}` : "";
    const body = table ? `${table.text}${goals}` : `failed: ${error?.split("\n", 1)[0]}`;
    out.push({
      id: s.id,
      title: s.title,
      result,
      ...(error ? { error } : {}),
      seconds: Math.round((Date.now() - started) / 100) / 10,
      text: `${s.title}\n\n${body}`,
      markdown: table ? `${table.markdown}${goals}` : body,
    });
  }
  return out;
}
