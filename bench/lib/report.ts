/**
 * From the samples of the rounds to what the suite prints: one row per scenario (medians over the
 * rounds of figures taken against the baseline of the same round), and the lines under the table —
 * CPU by process, metrics on ÷ off, the cost of each hop at concurrency 1, ratios across load
 * generators.
 */
import type { Sample } from "./rounds.js";
import { isScenario, type Entry, type Scenario } from "./scenario.js";
import { median } from "./stats.js";
import type { Row } from "./table.js";

export interface Report {
  rows: Row[];
  /** Per scenario: the row's figures plus CPU by process and errors (the results file). */
  medians: Record<string, Record<string, unknown>>;
  /** The per-hop and cross-row figures printed under the table, also in the results file. */
  derived: Record<string, { median: number; perRound: number[] }>;
  lines: string[];
}

const byRound = (xs: Sample[], id: string): Map<number, Sample> => new Map(xs.filter((x) => x.scenario === id).map((x) => [x.round, x]));

/** `f(a, b)` for every round where both scenarios ran, and the median. */
function paired(
  xs: Sample[],
  a: string,
  b: string,
  f: (a: Sample, b: Sample) => number,
): { median: number; perRound: number[] } | undefined {
  const [ra, rb] = [byRound(xs, a), byRound(xs, b)];
  const perRound = [...ra].filter(([r]) => rb.has(r)).map(([r, x]) => f(x, rb.get(r)!));
  return perRound.length ? { median: median(perRound), perRound } : undefined;
}

const us = (x: number): string => `${x >= 0 ? "+" : ""}${x.toFixed(0)}`;

export function buildReport(entries: Entry[], loaded: Sample[], single: Sample[], connections: number): Report {
  const scenarios = entries.filter(isScenario);
  const find = (id: string): Scenario | undefined => scenarios.find((s) => s.id === id);
  const medians: Report["medians"] = {};
  const splits: string[] = [];
  const rows: Row[] = entries.map((e) => {
    if (!isScenario(e)) return { label: e.label, note: e.note };
    const s = e;
    const mine = loaded.filter((x) => x.scenario === s.id);
    const c1 = single.filter((x) => x.scenario === s.id);
    const of = (f: (x: Sample) => number): number => median(mine.map(f));
    const cpus = mine.map((x) => x.cpuUsPerReq).filter((x): x is number => x !== null);
    const errors = [...mine, ...c1].reduce((n, x) => n + x.errors, 0);
    const base = find(s.baseline)!;
    const added = s.id === s.baseline ? 0 : paired(single, s.id, s.baseline, (a, b) => a.p50Us - b.p50Us)?.median;
    const row: Row = {
      label: s.label,
      rps: of((x) => x.rps),
      p50Ms: of((x) => x.p50Us) / 1000,
      p99Ms: of((x) => x.p99Us) / 1000,
      ratio: of((x) => x.ratio!),
      vs: `${base.short ?? base.label}${base.generator === s.generator ? "" : " †"}`,
      cpuUs: cpus.length ? median(cpus) : null,
      ...(c1.length ? { c1P50Us: median(c1.map((x) => x.p50Us)) } : {}),
      ...(added !== undefined ? { c1AddedUs: added } : {}),
      ...(errors ? { note: `${errors} errors` } : {}),
    };
    // Per-process CPU: in the full path, the api-server's share is the gateway hop's own cost.
    const cpuByProcess = Object.fromEntries(
      Object.keys(s.procs).map((name) => [
        name,
        median(mine.map((x) => x.cpuByProcess?.[name]).filter((x): x is number => x !== undefined)),
      ]),
    );
    if (Object.keys(cpuByProcess).length > 1 && row.cpuUs !== null) {
      splits.push(
        `${s.id}: ${Object.entries(cpuByProcess)
          .map(([n, v]) => `${n} ${v.toFixed(0)}`)
          .join(" + ")}`,
      );
    }
    medians[s.id] = {
      rps: row.rps,
      p50Ms: row.p50Ms,
      p99Ms: row.p99Ms,
      ratio: row.ratio,
      baseline: s.baseline,
      ratioToBare: of((x) => x.ratioBare!),
      cpuUsPerReq: row.cpuUs,
      cpuByProcess,
      c1P50Us: row.c1P50Us ?? null,
      c1AddedUs: row.c1AddedUs ?? null,
      errors,
    };
    return row;
  });

  const derived: Report["derived"] = {};
  const lines: string[] = [];
  if (splits.length) lines.push(`CPU µs/req by process (c=${connections}, medians): ${splits.join("; ")}`);
  const note = (
    key: string,
    d: { median: number; perRound: number[] } | undefined,
    say: (d: { median: number; perRound: number[] }) => string,
  ): void => {
    if (!d) return;
    derived[key] = d;
    lines.push(say(d));
  };
  const rounds = (d: { perRound: number[] }, f: (x: number) => string): string => d.perRound.map(f).join(" / ");
  note(
    "metricsOnOff",
    paired(loaded, "rest-infer", "rest-infer-nometrics", (a, b) => a.rps / b.rps),
    (d) => `metrics on ÷ off (full path REST /infer, same round, median of ${d.perRound.length}): ${d.median.toFixed(3)} (issue 7: ≥ 0.9)`,
  );

  // Hops at concurrency 1: p50 of the path with the hop − p50 of the path without it, same round.
  const hop = (key: string, a: string, b: string, what: string, goal = ""): void =>
    note(
      key,
      paired(single, a, b, (x, y) => x.p50Us - y.p50Us),
      (d) => `${what}: ${us(d.median)} µs p50 at c=1 (rounds ${rounds(d, us)})${goal}`,
    );
  const hopsAt = lines.length;
  hop(
    "gatewayHopUs",
    "rest-infer",
    "direct",
    "  gateway hop: full path REST /infer − direct to replica REST /infer",
    " — issue 8 goal ≤ 80 µs",
  );
  hop(
    "fastGatewayHopUs",
    "rest-infer-fast",
    "direct",
    "  gateway hop, fast ingress: full path fast ingress − direct to replica",
    " — issue 8 goal ≤ 80 µs",
  );
  hop("grpcGatewayUs", "grpc-infer", "grpc-bare", "  gRPC ingress: full path gRPC ModelInfer − bare grpc-js");
  hop("threadHopUs", "replica-multi", "replica-single", "  replica → worker-thread hop: replica multi 1 thread − replica single");
  note(
    "threadHopRatio",
    paired(loaded, "replica-multi", "replica-single", (a, b) => a.rps / b.rps),
    (d) =>
      `  worker-thread hop at ${connections} connections: replica multi 1 thread ÷ single = ${d.median.toFixed(2)}× req/s (rounds ${rounds(d, (x) => x.toFixed(2))})`,
  );
  hop(
    "processHopUs",
    "replica-process",
    "replica-single",
    "  replica → Node worker-process hop: replica process 1 Node worker − replica single",
  );
  hop(
    "pythonHopUs",
    "replica-python",
    "replica-single",
    "  replica → Python worker-process hop: replica with 1 Python worker − replica single",
  );
  note(
    "pythonProcessRatio",
    paired(loaded, "replica-python", "replica-process", (a, b) => a.rps / b.rps),
    (d) =>
      `  Python worker at ${connections} connections: 1 Python worker ÷ 1 Node worker process = ${d.median.toFixed(2)}× req/s (rounds ${rounds(d, (x) => x.toFixed(2))}) — issue 26 goal ≥ 0.7×`,
  );
  // The heading only when some hop was measured (`--only` may leave out the rows they need).
  if (lines.length > hopsAt)
    lines.splice(hopsAt, 0, "", "hops, added p50 at concurrency 1 (the path with the hop − the same path without it, same round, median):");

  // Across load generators: the grpc-js client costs more CPU than the HTTP generator on the same cores.
  const cross = ["grpc-infer", "grpc-bare"].filter((id) => medians[id]);
  if (cross.length) {
    lines.push(
      "",
      `gRPC rows ÷ bare node:http (same round; † another load generator, whose own CPU cost is in the ratio): ${cross
        .map((id) => `${find(id)!.label} ${(medians[id]!.ratioToBare as number).toFixed(2)}×`)
        .join(", ")}`,
    );
  }
  return { rows, medians, derived, lines };
}
