/**
 * Metrics on the hot path without prom-client's per-call cost: counters and histogram buckets are
 * plain numbers that the request path increments (a few nanoseconds; prom-client's
 * `labels(...).observe()` hashes the label set on every call, about 0.5 µs), and a
 * {@link ScrapedMetric} turns them into series when the registry is scraped. The replica's lanes
 * and the gateway's per-service series both record this way.
 */
import type { Metric, Registry } from "prom-client";

/** One histogram series: non-cumulative bucket counts (the last one is +Inf), sum and count. */
export class HistogramChild {
  readonly #bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    this.observeN(v, 1);
  }

  /** `n` observations of the same value (every request of one batch). */
  observeN(v: number, n: number): void {
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]! += n;
    this.sum += v * n;
    this.count += n;
  }
}

export type Value = { value: number; labels: Record<string, string | number>; metricName?: string };

/**
 * A series family read from plain numbers when scraped, registered like a prom-client metric
 * (the registry only calls `get()`; `reset()` for `resetMetrics()`).
 */
export class ScrapedMetric {
  readonly aggregator = "sum";
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "histogram",
    readonly values: () => Value[],
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() };
  }

  /** The numbers belong to their owner; `resetMetrics()` leaves them. */
  reset(): void {}
}

export function histogramValues(
  name: string,
  bounds: readonly number[],
  series: { labels: Record<string, string>; h: HistogramChild }[],
): Value[] {
  const out: Value[] = [];
  for (const { labels, h } of series) {
    let acc = 0;
    for (let i = 0; i < bounds.length; i++) {
      acc += h.counts[i]!;
      out.push({ value: acc, labels: { ...labels, le: bounds[i]! }, metricName: `${name}_bucket` });
    }
    out.push({ value: h.count, labels: { ...labels, le: "+Inf" }, metricName: `${name}_bucket` });
    out.push({ value: h.sum, labels, metricName: `${name}_sum` });
    out.push({ value: h.count, labels, metricName: `${name}_count` });
  }
  return out;
}

/** Registers `metric` in `registry` (prom-client accepts any object with `get()`). */
export function registerScraped(registry: Registry, metric: ScrapedMetric): void {
  registry.registerMetric(metric as unknown as Metric);
}
