/**
 * The API server's metrics: every request it answers, by service, capability and outcome, with
 * its end-to-end latency; failover, ejections and delegations; replica health and open circuits.
 * Per-request work is a few plain-number increments on series resolved once per
 * service/capability/code (`scraped.ts`; prom-client's labelled observe() cost ~4 % of the
 * gateway's CPU per request); everything that is state rather than an event (replicas by health,
 * in-flight, open circuits) is read from the registry when scraped.
 */
import { Counter, Gauge, type Registry as PromRegistry } from "prom-client";
import type { ColdStarts } from "./cold-start.js";
import { COLD_START_BUCKETS } from "./cold-start.js";
import type { Forwarder } from "./forwarder.js";
import type { DeploymentView } from "./status.js";
import type { ServicePolicies } from "./policies.js";
import type { Registry } from "../routing/registry.js";
import { createMetricsRegistry, metricsRoute } from "../metrics/exposition.js";
import type { RouteHandler } from "../util/http.js";
import { HistogramChild, ScrapedMetric, histogramValues, registerScraped } from "../metrics/scraped.js";
import type { BodyBudget } from "../util/body-budget.js";

/** Seconds: 250 µs … 60 s, dense where a serving system's requests are. */
export const LATENCY_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The service label of requests that matched no replica. */
export const NO_SERVICE = "";

interface Children {
  labels: { service: string; capability: string };
  duration: HistogramChild;
  byCode: Map<string, { n: number }>;
  /** The service's entry in `lastActivity` (shared by its capabilities). */
  service: { at: number };
}

export class GatewayMetrics {
  readonly registry: PromRegistry;
  /** Read by the status statistics (`get()`, as prom-client metrics). */
  readonly requests: ScrapedMetric;
  readonly duration: ScrapedMetric;
  readonly #rejected: Counter<"code">;
  readonly #rejectedByCode = new Map<string, { inc(): void }>();
  /** service → capability → cached children. */
  readonly #children = new Map<string, Map<string, Children>>();
  /** service → when its last request was answered (ms epoch), for the SAGE statistics. */
  readonly lastActivity = new Map<string, { at: number }>();
  /** The deployment controller, for the autoscaler's series (set once it is attached). */
  deployment: () => DeploymentView | undefined = () => undefined;

  constructor(sources: {
    registry: Registry;
    forwarder: Forwarder;
    policies: ServicePolicies;
    coldStarts?: ColdStarts;
    bodyBudget?: BodyBudget;
  }) {
    const registry = (this.registry = createMetricsRegistry());
    const { forwarder, policies } = sources;
    // Services with `enable_metrics: false` are left out of the state series too.
    const replicas = { list: () => sources.registry.list().filter((e) => policies.of(e).metrics) };
    const all = (): Children[] => [...this.#children.values()].flatMap((m) => [...m.values()]);
    this.requests = new ScrapedMetric(
      "anyserve_gateway_requests_total",
      "Requests the API server answered, by service, capability and outcome code (OK or the error code).",
      "counter",
      () => all().flatMap((c) => [...c.byCode].map(([code, v]) => ({ value: v.n, labels: { ...c.labels, code } }))),
    );
    const DURATION = "anyserve_gateway_request_duration_seconds";
    this.duration = new ScrapedMetric(
      DURATION,
      "Time at the API server from routing the request to the replica's answer (or the failure), failover retries included.",
      "histogram",
      () =>
        histogramValues(
          DURATION,
          LATENCY_BUCKETS,
          all().map((c) => ({ labels: c.labels, h: c.duration })),
        ),
    );
    registerScraped(registry, this.requests);
    registerScraped(registry, this.duration);
    this.#rejected = new Counter({
      name: "anyserve_gateway_rejected_total",
      help: "Requests refused before they reached a replica (malformed headers or body, too large, unknown route, unauthenticated), by code.",
      labelNames: ["code"],
      registers: [registry],
    });
    const counterFrom = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    counterFrom("anyserve_gateway_retries_total", "Failover retries sent to another replica.", () => forwarder.counters.retries);
    counterFrom("anyserve_gateway_retries_denied_total", "Retries the retry budget refused.", () => forwarder.counters.retries_denied);
    counterFrom("anyserve_gateway_ejections_total", "Replicas ejected by the outlier detector.", () => forwarder.counters.ejections);
    counterFrom(
      "anyserve_gateway_delegated_requests_total",
      "Requests that arrived already delegated by a replica (X-Delegated-From).",
      () => forwarder.counters.delegated,
    );
    new Gauge({
      name: "anyserve_gateway_in_flight",
      help: "Requests the API server has sent to replicas and not yet had answered, by service.",
      labelNames: ["service"],
      registers: [registry],
      collect() {
        this.reset();
        for (const e of replicas.list()) this.inc({ service: e.service ?? NO_SERVICE }, e.inFlight);
      },
    });
    const budget = sources.bodyBudget;
    if (budget !== undefined) {
      new Gauge({
        name: "anyserve_gateway_buffered_body_bytes",
        help: "Bytes of request bodies the API server holds now (read, or declared and being read, until the answer); api_server.max_buffered_mb bounds them.",
        registers: [registry],
        collect() {
          this.set(budget.used);
        },
      });
    }
    new Gauge({
      name: "anyserve_gateway_replicas",
      help: "Registered replicas by service and availability: healthy, unhealthy, draining, ejected.",
      labelNames: ["service", "state"],
      registers: [registry],
      collect() {
        this.reset();
        for (const e of replicas.list()) {
          const state = !e.available
            ? "draining"
            : !e.healthy
              ? "unhealthy"
              : forwarder.outliers.isEjected(e.replicaId)
                ? "ejected"
                : "healthy";
          this.inc({ service: e.service ?? NO_SERVICE, state });
        }
      },
    });
    this.#autoscalerSeries(registry, sources.coldStarts);
    new Gauge({
      name: "anyserve_gateway_circuits_open",
      help: "Circuits open or half-open, by replica and capability (1 per circuit).",
      labelNames: ["replica", "capability", "state"],
      registers: [registry],
      collect() {
        this.reset();
        if (forwarder.circuits.openCount === 0) return;
        for (const e of replicas.list()) {
          for (const c of forwarder.circuits.snapshot(e.replicaId)) {
            if (c.state !== "closed") this.set({ replica: e.replicaId, capability: c.capability, state: c.state }, 1);
          }
        }
      },
    });
  }

  /**
   * The autoscaler's decisions (read from the controller when scraped) and the cold starts (timed
   * by the API server, which holds the requests that wait for them).
   */
  #autoscalerSeries(registry: PromRegistry, cold: ColdStarts | undefined): void {
    const autoscaled = () =>
      Object.entries(this.deployment()?.status().services ?? {}).flatMap(([service, s]) =>
        s.autoscaling ? [{ service, a: s.autoscaling }] : [],
      );
    const gauge = (name: string, help: string, value: (a: NonNullable<ReturnType<typeof autoscaled>[number]>["a"]) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ["service"],
        registers: [registry],
        collect() {
          this.reset();
          for (const { service, a } of autoscaled()) {
            const v = value(a);
            if (v !== null) this.set({ service }, v);
          }
        },
      });
    gauge(
      "anyserve_autoscaler_desired_replicas",
      "Replicas the autoscaler wants for the service now (the controller runs towards it).",
      (a) => a.desired,
    );
    gauge("anyserve_autoscaler_running_replicas", "Replicas of the autoscaled service serving now.", (a) => a.running);
    gauge(
      "anyserve_autoscaler_ongoing_requests",
      "Requests ongoing across the service (running or queued at replicas, waiting at the API server), averaged over the look-back window.",
      (a) => a.ongoing,
    );
    new Gauge({
      name: "anyserve_autoscaler_last_decision_timestamp_seconds",
      help: "When the autoscaler last changed the service's count, labelled with why (load_above_target, load_below_target, request_while_cold, bounds) and the counts.",
      labelNames: ["service", "reason", "from", "to"],
      registers: [registry],
      collect() {
        this.reset();
        for (const { service, a } of autoscaled()) {
          const d = a.decisions.at(-1);
          if (d) this.set({ service, reason: d.reason, from: d.from, to: d.to }, d.at / 1000);
        }
      },
    });
    registerScraped(
      registry,
      new ScrapedMetric(
        "anyserve_autoscaler_decisions_total",
        "Changes of a service's count the autoscaler made, by reason.",
        "counter",
        () =>
          autoscaled().flatMap(({ service, a }) =>
            Object.entries(a.decisions_total ?? {}).map(([reason, value]) => ({ value, labels: { service, reason } })),
          ),
      ),
    );
    if (!cold) return;
    new Gauge({
      name: "anyserve_autoscaler_waiting_requests",
      help: "Requests waiting at the API server for the first replica of a service scaled to zero.",
      labelNames: ["service"],
      registers: [registry],
      collect() {
        this.reset();
        for (const { service } of autoscaled()) this.set({ service }, cold.waiting(service));
      },
    });
    registerScraped(
      registry,
      new ScrapedMetric(
        "anyserve_autoscaler_cold_starts_total",
        "Starts of a service from zero replicas that requests waited for.",
        "counter",
        () => [...cold.stats()].map(([service, s]) => ({ value: s.count, labels: { service } })),
      ),
    );
    const COLD = "anyserve_autoscaler_cold_start_seconds";
    registerScraped(
      registry,
      new ScrapedMetric(
        COLD,
        "From the first request that found the service scaled to zero to its first replica able to serve it.",
        "histogram",
        () =>
          histogramValues(
            COLD,
            COLD_START_BUCKETS,
            [...cold.stats()].map(([service, s]) => ({ labels: { service }, h: s.seconds })),
          ),
      ),
    );
  }

  /** `GET /metrics`. */
  route(): RouteHandler {
    return metricsRoute(this.registry);
  }

  /** One request refused before routing. */
  rejected(code: string): void {
    let c = this.#rejectedByCode.get(code);
    if (!c) this.#rejectedByCode.set(code, (c = this.#rejected.labels(code)));
    c.inc();
  }

  /** One answered request (`code` "OK" or the error code). */
  observe(service: string, capability: string, code: string, seconds: number): void {
    let byCap = this.#children.get(service);
    if (!byCap) this.#children.set(service, (byCap = new Map()));
    let c = byCap.get(capability);
    if (!c) {
      let last = this.lastActivity.get(service);
      if (!last) this.lastActivity.set(service, (last = { at: 0 }));
      byCap.set(
        capability,
        (c = { labels: { service, capability }, duration: new HistogramChild(LATENCY_BUCKETS), byCode: new Map(), service: last }),
      );
    }
    let counter = c.byCode.get(code);
    if (!counter) c.byCode.set(code, (counter = { n: 0 }));
    counter.n++;
    c.duration.observe(seconds);
    c.service.at = Date.now();
  }
}
