/**
 * Per-service request statistics for the status API, `anyserve status` and the dashboard — read
 * from the same Prometheus counters and histograms `/metrics` exposes, so the three can never
 * disagree. A sample every second keeps a 60 s ring: requests per second come from the last 10 s,
 * latency percentiles from the window's histogram buckets (interpolated within a bucket, as
 * Prometheus' `histogram_quantile` does).
 */
import type { GatewayMetrics } from "./metrics.js";

export interface ServiceRequestStats {
  requests: number;
  errors: number;
  errors_by_code: Record<string, number>;
  /** Requests per second over the last 10 s. */
  rps: number;
  /** Over the last 60 s; null before any request in that window. */
  latency_ms: { p50: number; p95: number; p99: number } | null;
  /** When the service last answered a request (ISO 8601), null before the first. */
  last_activity_time: string | null;
}

interface Sample {
  at: number;
  /** service → totals. */
  services: Map<string, { requests: number; byCode: Map<string, number>; buckets: number[] }>;
}

/**
 * The key under which requests no replica matched are sampled (`capability="unmatched"` in the
 * metrics). Not a service name (those are `[A-Za-z0-9_.-]`), and kept apart from `""`, the requests
 * of replicas registered without a service: those matched, and served.
 */
export const UNMATCHED = "\u0000unmatched";

const WINDOW_MS = 60_000;
const RATE_MS = 10_000;

export class ServiceStats {
  /** Undefined when the API server runs without metrics: every service then shows zeros. */
  readonly #metrics: GatewayMetrics | undefined;
  readonly #ring: Sample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #bounds: number[] = [];

  constructor(metrics: GatewayMetrics | undefined) {
    this.#metrics = metrics;
  }

  start(everyMs = 1_000): void {
    this.#timer = setInterval(() => void this.sample(), everyMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Takes a sample now (the status API calls this so its counts are exact at answer time). */
  async sample(): Promise<void> {
    if (this.#metrics === undefined) return;
    const now = Date.now();
    const services: Sample["services"] = new Map();
    const get = (service: string) => {
      let s = services.get(service);
      if (!s) services.set(service, (s = { requests: 0, byCode: new Map(), buckets: [] }));
      return s;
    };
    const serviceOf = (labels: Record<string, string | number | undefined>): string =>
      labels.capability === "unmatched" ? UNMATCHED : String(labels.service ?? "");
    for (const v of (await this.#metrics.requests.get()).values) {
      const s = get(serviceOf(v.labels));
      s.requests += v.value;
      const code = String(v.labels.code);
      s.byCode.set(code, (s.byCode.get(code) ?? 0) + v.value);
    }
    const bounds: number[] = [];
    for (const v of (await this.#metrics.duration.get()).values) {
      if (v.metricName !== "anyserve_gateway_request_duration_seconds_bucket") continue;
      const raw = (v.labels as Record<string, string | number | undefined>).le;
      const le = raw === "+Inf" ? Infinity : Number(raw);
      let i = bounds.indexOf(le);
      if (i < 0) i = bounds.push(le) - 1;
      const s = get(serviceOf(v.labels));
      s.buckets[i] = (s.buckets[i] ?? 0) + v.value;
    }
    this.#bounds = bounds;
    this.#ring.push({ at: now, services });
    while (this.#ring.length > 2 && this.#ring[0]!.at < now - WINDOW_MS) this.#ring.shift();
  }

  /** Service names seen so far ("" = replicas registered without one); requests nothing matched are {@link UNMATCHED}'s, not listed. */
  services(): string[] {
    return [...(this.#ring.at(-1)?.services.keys() ?? [])].filter((s) => s !== UNMATCHED);
  }

  of(service: string): ServiceRequestStats {
    const last = this.#ring.at(-1)?.services.get(service);
    if (!last) return { requests: 0, errors: 0, errors_by_code: {}, rps: 0, latency_ms: null, last_activity_time: null };
    const byCode = Object.fromEntries([...last.byCode].filter(([c]) => c !== "OK"));
    const errors = Object.values(byCode).reduce((a, b) => a + b, 0);
    const at = this.#metrics?.lastActivity.get(service)?.at ?? 0;
    return {
      requests: last.requests,
      errors,
      errors_by_code: byCode,
      rps: this.#rate(service),
      latency_ms: this.#latency(service),
      last_activity_time: at > 0 ? new Date(at).toISOString() : null,
    };
  }

  #rate(service: string): number {
    const last = this.#ring.at(-1)!;
    const first = this.#ring.find((s) => s.at >= last.at - RATE_MS) ?? last;
    if (first === last) return 0;
    const before = first.services.get(service)?.requests ?? 0;
    const now = last.services.get(service)?.requests ?? 0;
    return round((now - before) / ((last.at - first.at) / 1000), 2);
  }

  #latency(service: string): ServiceRequestStats["latency_ms"] {
    const last = this.#ring.at(-1)!.services.get(service)!;
    const first = this.#ring[0]!.services.get(service);
    const order = this.#bounds.map((b, i) => [b, i] as const).sort((a, b) => a[0] - b[0]);
    // Window counts per bucket, cumulative by bound; the first sample in the ring is the baseline,
    // unless the ring holds one sample only (then everything counts).
    const cumulative = order.map(([, i]) => (last.buckets[i] ?? 0) - (this.#ring.length > 1 ? (first?.buckets[i] ?? 0) : 0));
    const total = cumulative.at(-1) ?? 0;
    if (total <= 0) return null;
    const q = (p: number): number => {
      const rank = p * total;
      let k = cumulative.findIndex((c) => c >= rank);
      if (k < 0) k = cumulative.length - 1;
      const upper = order[k]![0];
      const lower = k === 0 ? 0 : order[k - 1]![0];
      if (upper === Infinity) return round(lower * 1000, 3);
      const below = k === 0 ? 0 : cumulative[k - 1]!;
      const inBucket = cumulative[k]! - below;
      const frac = inBucket > 0 ? (rank - below) / inBucket : 1;
      return round((lower + (upper - lower) * frac) * 1000, 3);
    };
    return { p50: q(0.5), p95: q(0.95), p99: q(0.99) };
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
