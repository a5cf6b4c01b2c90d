/**
 * Interleaved rounds: round 1 runs every scenario once, then round 2…; the order rotates each
 * round so no scenario always runs first (or right after another). Every sample's ratio is taken
 * against its baseline's sample *of the same round*: on a shared VM the absolute throughput drifts
 * by tens of percent within an afternoon; only same-round ratios hold.
 */
import { cpuMeter, interferenceMeter, type Interference, type LoadResult } from "./load.js";
import type { Scenario } from "./scenario.js";

/** One measurement of one scenario in one round. */
export interface Sample extends LoadResult {
  round: number;
  scenario: string;
  /** Server-side CPU per completed request (all processes of the scenario), null if not measured. */
  cpuUsPerReq: number | null;
  /** The same, per process of the scenario (e.g. api-server vs replica): what each hop costs. */
  cpuByProcess: Record<string, number> | null;
  /** CPU used by other processes / stolen by the hypervisor during the measurement. */
  interference: Interference | null;
  /** rps ÷ its baseline's rps of the same round. */
  ratio?: number;
  /** rps ÷ bare node:http's rps of the same round. */
  ratioBare?: number;
}

export interface RoundsConfig {
  connections: number;
  seconds: number;
  /** Warm-up before a scenario's first measurement (JIT, connections, caches)… */
  firstWarmup: number;
  /** …and before the later ones, when its processes are warm already. */
  warmup: number;
  rounds: number;
}

/** Rotates the order by `round` so each scenario takes every position in turn. */
const rotated = <T>(xs: T[], round: number): T[] => xs.map((_, i) => xs[(i + round) % xs.length]!);

/**
 * Loads every scenario once for `seconds`, right after start-up, results discarded. Measured here:
 * a Node server whose hot path first runs after ~15 s idle costs 30–80 % more CPU per request, for
 * up to tens of seconds of load, than one loaded right after it started; warming all of them first
 * puts every scenario in the same state, whatever its turn in round 1.
 */
export async function warmAll(scenarios: Scenario[], connections: number, seconds: number): Promise<void> {
  for (const s of scenarios) await s.measure(connections, seconds, 0, () => undefined);
}

/** Runs every scenario once per round; returns all samples, ratios filled in. */
export async function runRounds(scenarios: Scenario[], c: RoundsConfig, log: (line: string) => void): Promise<Sample[]> {
  const samples: Sample[] = [];
  const width = Math.max(...scenarios.map((s) => s.id.length));
  for (let round = 1; round <= c.rounds; round++) {
    const inRound: Sample[] = [];
    for (const s of rotated(scenarios, round - 1)) {
      let cpu: () => Record<string, number> | null = () => null;
      let others: () => Interference | null = () => null;
      const r = await s.measure(c.connections, c.seconds, round === 1 ? c.firstWarmup : c.warmup, () => {
        if (Object.keys(s.procs).length) cpu = cpuMeter(s.procs);
        others = interferenceMeter();
      });
      const used = cpu();
      const interference = others();
      const byProcess =
        used === null || r.requests === 0 ? null : Object.fromEntries(Object.entries(used).map(([k, us]) => [k, us / r.requests]));
      const total = byProcess && Object.values(byProcess).reduce((a, b) => a + b, 0);
      const sample: Sample = { round, scenario: s.id, ...r, cpuUsPerReq: total, cpuByProcess: byProcess, interference };
      inRound.push(sample);
      log(
        `  c=${c.connections} round ${round} ${s.id.padEnd(width)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${(r.p50Us / 1000).toFixed(2)} ms  p99 ${(r.p99Us / 1000).toFixed(2)} ms` +
          `  cpu ${sample.cpuUsPerReq?.toFixed(0) ?? "–"} µs/req${r.errors ? `  ERRORS ${r.errors}` : ""}` +
          (interference ? `  others ${interference.foreignPct}% steal ${interference.stealPct}%` : ""),
      );
    }
    const rps = (id: string): number => inRound.find((x) => x.scenario === id)?.rps ?? NaN;
    for (const x of inRound) {
      x.ratio = x.rps / rps(scenarios.find((s) => s.id === x.scenario)!.baseline);
      x.ratioBare = x.rps / rps("bare");
    }
    samples.push(...inRound);
  }
  return samples;
}
