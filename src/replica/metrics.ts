/**
 * A replica's Prometheus metrics (docs/metrics.md, "Replica metrics"): per capability, requests
 * by outcome, queue wait, execution time and batch sizes, plus gauges read at scrape time (in
 * flight, queue depth, workers by state, object store totals) and the process collectors.
 *
 * The `capability` label is the handler's registered capability as `capabilityKey` writes it
 * (`model=x,type=chat`), never the client's query, so the series are bounded by the app's handlers
 * (and `code` by the error catalogue).
 *
 * The hot path does not go through prom-client: each lane gets a {@link LaneMetrics} whose
 * counters and histogram buckets are plain numbers (an increment, a bucket search over 18 bounds),
 * and the registry reads them when scraped. prom-client's own `labels(...).observe()` hashes the
 * label set on every call (about 0.5 µs); these cost a few nanoseconds. Gauges are prom-client
 * gauges whose `collect()` reads the lanes when scraped: nothing is done per request for them.
 */
import { Gauge, type Registry } from "prom-client";
import { addLoad, type LaneLoad, type LaneObserver } from "../execution/lane.js";
import { capabilityKey, type CapabilityMap } from "../protocol/capability.js";
import { createMetricsRegistry, metricsRoute, metricsText } from "../metrics/exposition.js";
import type { RouteHandler } from "../util/http.js";
import { HistogramChild, ScrapedMetric, histogramValues, registerScraped } from "../metrics/scraped.js";

export { HistogramChild } from "../metrics/scraped.js";

/** Seconds: 100 µs … 60 s, about 2.5× apart. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
/** Requests per handler call: powers of two. */
export const BATCH_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** Totals of an object store (the directory's, which other replicas may share). */
export interface StoreTotals {
  objects: number;
  bytes: number;
}

export interface ReplicaMetricsOptions {
  replicaId: string;
  service?: string | undefined;
  /** When the replica has an object store: `anyserve_object_store_bytes` and `_objects`. */
  objectStore?: { totals(): Promise<StoreTotals> } | undefined;
  /** A store scan is reused for this long (ms) by the next scrapes; default 5 s. */
  storeTotalsMaxAgeMs?: number;
}

/** The series of one capability, resolved once: what its lane and the dispatcher record into. */
export class LaneMetrics implements LaneObserver {
  readonly capability: string;
  readonly queueWait = new HistogramChild(LATENCY_BUCKETS);
  readonly execution = new HistogramChild(LATENCY_BUCKETS);
  readonly batchSize = new HistogramChild(BATCH_BUCKETS);
  /** Requests by outcome code; "OK" first. */
  readonly outcomes = new Map<string, { n: number }>();
  readonly #ok = { n: 0 };
  /** Whether the handler batches (batch_size is only exposed for those). */
  batching = false;
  readonly loads: (() => LaneLoad)[] = [];

  /** `handler`: false for the series of requests no handler matched (outcomes only). */
  constructor(
    capability: string,
    readonly handler = true,
  ) {
    this.capability = capability;
    if (handler) this.outcomes.set("OK", this.#ok);
  }

  ok(): void {
    this.#ok.n++;
  }

  /** A request that ended with `code` ("OK" or an error code). */
  outcome(code: string): void {
    let c = this.outcomes.get(code);
    if (!c) this.outcomes.set(code, (c = { n: 0 }));
    c.n++;
  }
}

const STATES = ["starting", "warm", "idle", "failed"] as const;

export class ReplicaMetrics {
  readonly registry: Registry;
  readonly #lanes = new Map<string, LaneMetrics>();
  #unmatched: LaneMetrics | undefined;
  #totals: { at: number; value: Promise<StoreTotals | undefined> } | undefined;

  constructor(o: ReplicaMetricsOptions) {
    this.registry = createMetricsRegistry({ replica: o.replicaId, ...(o.service ? { service: o.service } : {}) });
    const lanes = (): LaneMetrics[] => [...this.#lanes.values()];
    const all = (): LaneMetrics[] => (this.#unmatched ? [...lanes(), this.#unmatched] : lanes());
    const register = (m: ScrapedMetric): void => registerScraped(this.registry, m);

    register(
      new ScrapedMetric(
        "anyserve_replica_requests_total",
        "Requests that reached this replica's dispatcher, by the handler's capability and outcome (OK or the error code).",
        "counter",
        () => all().flatMap((l) => [...l.outcomes].map(([code, c]) => ({ value: c.n, labels: { capability: l.capability, code } }))),
      ),
    );
    const hist = (name: string, help: string, pick: (l: LaneMetrics) => HistogramChild | undefined, bounds: readonly number[]): void =>
      register(
        new ScrapedMetric(name, help, "histogram", () =>
          histogramValues(
            name,
            bounds,
            lanes().flatMap((l) => {
              const h = pick(l);
              return h ? [{ labels: { capability: l.capability }, h }] : [];
            }),
          ),
        ),
      );
    hist(
      "anyserve_replica_queue_wait_seconds",
      "Time from the lane accepting a request to its start on a worker (requests that started).",
      (l) => l.queueWait,
      LATENCY_BUCKETS,
    );
    hist(
      "anyserve_replica_execution_seconds",
      "Time from a request's start on a worker to the worker's answer (for a batch: the handler call).",
      (l) => l.execution,
      LATENCY_BUCKETS,
    );
    hist(
      "anyserve_replica_batch_size",
      "Requests per call of a batch handler.",
      (l) => (l.batching ? l.batchSize : undefined),
      BATCH_BUCKETS,
    );

    const loads = (): Map<string, LaneLoad> => {
      const out = new Map<string, LaneLoad>();
      for (const l of lanes()) {
        const sum: LaneLoad = { inFlight: 0, queued: 0, workers: { starting: 0, warm: 0, idle: 0, failed: 0 } };
        for (const load of l.loads) addLoad(sum, load());
        out.set(l.capability, sum);
      }
      return out;
    };
    const inFlight = new Gauge({
      name: "anyserve_replica_in_flight",
      help: "Requests running on a worker now, by capability.",
      labelNames: ["capability"],
      registers: [this.registry],
      collect: () => {
        for (const [capability, l] of loads()) inFlight.set({ capability }, l.inFlight);
      },
    });
    const queueDepth = new Gauge({
      name: "anyserve_replica_queue_depth",
      help: "Requests waiting in the capability's queue now.",
      labelNames: ["capability"],
      registers: [this.registry],
      collect: () => {
        for (const [capability, l] of loads()) queueDepth.set({ capability }, l.queued);
      },
    });
    const workers = new Gauge({
      name: "anyserve_replica_workers",
      help: "Workers by state (idle: warm workers with nothing to do, also counted as warm).",
      labelNames: ["capability", "state"],
      registers: [this.registry],
      collect: () => {
        for (const [capability, l] of loads()) for (const state of STATES) workers.set({ capability, state }, l.workers[state]);
      },
    });

    if (o.objectStore) {
      const store = o.objectStore;
      const maxAge = o.storeTotalsMaxAgeMs ?? 5_000;
      const totals = (): Promise<StoreTotals | undefined> => {
        const now = Date.now();
        if (!this.#totals || now - this.#totals.at > maxAge) this.#totals = { at: now, value: store.totals().catch(() => undefined) };
        return this.#totals.value;
      };
      const bytes = new Gauge({
        name: "anyserve_object_store_bytes",
        help: "Bytes in the replica's object store directory (objects and unfinished writes; what counts toward its cap).",
        registers: [this.registry],
        collect: async () => {
          const t = await totals();
          if (t) bytes.set(t.bytes);
        },
      });
      const objects = new Gauge({
        name: "anyserve_object_store_objects",
        help: "Objects in the replica's object store directory (expired ones until the next sweep).",
        registers: [this.registry],
        collect: async () => {
          const t = await totals();
          if (t) objects.set(t.objects);
        },
      });
    }
  }

  /**
   * The series of a handler's capability; `load` is read when scraped. Handlers with the same
   * capability share the series (their loads add up).
   */
  lane(capability: CapabilityMap, o: { batching: boolean; load: () => LaneLoad }): LaneMetrics {
    const key = capabilityKey(capability);
    let m = this.#lanes.get(key);
    if (!m) this.#lanes.set(key, (m = new LaneMetrics(key)));
    if (o.batching) m.batching = true;
    m.loads.push(o.load);
    return m;
  }

  /** Requests no handler matched (NO_MATCHING_CAPABILITY, MODEL_NOT_FOUND): `capability=""`. */
  unmatched(code: string): void {
    (this.#unmatched ??= new LaneMetrics("", false)).outcome(code);
  }

  /** The exposition text (what `GET /metrics` answers). */
  text(): Promise<string> {
    return metricsText(this.registry);
  }

  /** `GET /metrics`. */
  route(): RouteHandler {
    return metricsRoute(this.registry);
  }
}
