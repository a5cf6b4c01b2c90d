/**
 * What the management API, `anyserve status`, the dashboard and `env.getServiceStatus()` show —
 * the seed's `ServiceMonitor.get_service_status()`: per service its config, replicas and their
 * health, request and error counts, rps, latency percentiles, queue depth, active workers and the
 * replicas' CPU and memory. It joins three sources: the deployment (under `anyserve up`: config,
 * replica processes), the registry (health, in-flight, the load each replica reported to its last
 * health probe) and the request statistics (from the metrics).
 */
import type { Forwarder } from "./forwarder.js";
import type { ServicePolicies } from "./policies.js";
import type { Registry, ReplicaEntry, ReplicaLoad } from "../routing/registry.js";
import { UNMATCHED, type ServiceRequestStats, type ServiceStats } from "./service-stats.js";

export type { ReplicaLoad };

/**
 * The group of replicas registered without a service (the seed's registration shape, or
 * `startReplica` without `service`): shown as one service so that they are not invisible. Not a
 * valid service name, so it cannot collide with one.
 */
export const UNNAMED_SERVICE = "(none)";

/** The deployment controller as the status model sees it (absent for a bare `anyserve api-server`). */
export interface DeploymentView {
  status(): { services: Record<string, { placement: string; reason?: string; config: unknown; replicas: SupervisedReplica[] }> };
  readonly node?: { name: string; labels: Record<string, string>; cpuCores: number; memoryMb: number; gpuIds: number[] };
}

export interface SupervisedReplica {
  replicaId: string;
  state: string;
  pid: number | null;
  restarts: number;
  lastExit: string | null;
}

export interface ReplicaView {
  replica_id: string;
  service: string | null;
  node: string | null;
  state: string;
  pid: number | null;
  restarts: number;
  last_exit: string | null;
  registered: boolean;
  health: "healthy" | "unhealthy" | "draining" | "ejected" | "unknown";
  http_endpoint: string | null;
  in_flight: number;
  queue_depth: number | null;
  workers: ReplicaLoad["workers"] | null;
  cpu_percent: number | null;
  memory_mb: number | null;
  circuits_open: number;
  /** Requests in flight and no answer, chunk or passed probe for the API server's stall time: passed over while another replica can serve. */
  stalled: boolean;
}

export interface ServiceView {
  name: string;
  status: string;
  reason?: string;
  config: unknown;
  policy: { load_balancing: string; failover_enabled: boolean; health_check_interval_ms: number | null };
  replicas: ReplicaView[];
  stats: ServiceRequestStats & {
    in_flight: number;
    queue_depth: number;
    active_workers: number;
    /** Summed over the replicas that reported; null when none has yet. */
    cpu_percent: number | null;
    memory_mb: number | null;
  };
}

export class StatusModel {
  #deployment: DeploymentView | undefined;

  constructor(private readonly o: { registry: Registry; policies: ServicePolicies; forwarder: Forwarder; stats: ServiceStats }) {}

  /** Under `anyserve up` (or the Environment API): the controller whose config and processes to show. */
  attach(deployment: DeploymentView): void {
    this.#deployment = deployment;
  }

  /** Takes a fresh statistics sample, so counts are exact at the moment of asking. */
  refresh(): Promise<void> {
    return this.o.stats.sample();
  }

  serviceNames(): string[] {
    const names = new Set(Object.keys(this.#deployment?.status().services ?? {}));
    for (const e of this.o.registry.list()) names.add(e.service ?? UNNAMED_SERVICE);
    for (const s of this.o.stats.services()) names.add(s === "" ? UNNAMED_SERVICE : s);
    return [...names].sort();
  }

  services(): ServiceView[] {
    return this.serviceNames().map((n) => this.service(n)!);
  }

  service(name: string): ServiceView | undefined {
    const deployed = this.#deployment?.status().services[name];
    const label = name === UNNAMED_SERVICE ? "" : name;
    const registered = this.o.registry.list().filter((e) => (e.service ?? "") === label);
    if (!deployed && registered.length === 0 && !this.o.stats.services().includes(label)) return undefined;
    const replicas = this.#replicas(deployed?.replicas ?? [], registered);
    const sum = (f: (r: ReplicaView) => number | null): number => replicas.reduce((a, r) => a + (f(r) ?? 0), 0);
    const policies = this.o.policies.describe();
    return {
      name,
      status: deployed?.placement ?? "registered",
      ...(deployed?.reason !== undefined ? { reason: deployed.reason } : {}),
      config: deployed?.config ?? null,
      policy: policies[name] ?? policies["*"]!,
      replicas,
      stats: {
        ...this.o.stats.of(label),
        in_flight: sum((r) => r.in_flight),
        queue_depth: sum((r) => r.queue_depth),
        active_workers: sum((r) => (r.workers ? r.workers.warm + r.workers.starting : 0)),
        cpu_percent: replicas.some((r) => r.cpu_percent !== null) ? Math.round(sum((r) => r.cpu_percent) * 10) / 10 : null,
        memory_mb: replicas.some((r) => r.memory_mb !== null) ? Math.round(sum((r) => r.memory_mb)) : null,
      },
    };
  }

  replicas(): ReplicaView[] {
    const supervised = Object.values(this.#deployment?.status().services ?? {}).flatMap((s) => s.replicas);
    return this.#replicas(supervised, this.o.registry.list());
  }

  nodes(): Record<string, unknown>[] {
    const byNode = new Map<string, ReplicaEntry[]>();
    for (const e of this.o.registry.list()) {
      const n = e.node ?? "local";
      byNode.set(n, [...(byNode.get(n) ?? []), e]);
    }
    const own = this.#deployment?.node;
    if (own && !byNode.has(own.name)) byNode.set(own.name, []);
    return [...byNode].map(([name, entries]) => ({
      name,
      replicas: entries.map((e) => e.replicaId),
      ...(own && own.name === name
        ? { labels: own.labels, capacity: { cpu_cores: own.cpuCores, memory_mb: own.memoryMb, gpus: own.gpuIds.length } }
        : {}),
    }));
  }

  /** Totals across services, plus the gateway's failover counters. */
  stats(): Record<string, unknown> {
    const services = this.serviceNames().map((n) => this.o.stats.of(n === UNNAMED_SERVICE ? "" : n));
    const unmatched = this.o.stats.of(UNMATCHED);
    const all = [...services, unmatched];
    const f = this.o.forwarder;
    return {
      time: Date.now(),
      services: services.length,
      replicas: this.o.registry.size,
      requests: all.reduce((a, s) => a + s.requests, 0),
      errors: all.reduce((a, s) => a + s.errors, 0),
      rps: Math.round(all.reduce((a, s) => a + s.rps, 0) * 100) / 100,
      unmatched: unmatched.requests,
      failover: { ...f.counters, retry_budget: f.retryBudget.snapshot() },
    };
  }

  #replicas(supervised: SupervisedReplica[], registered: ReplicaEntry[]): ReplicaView[] {
    const f = this.o.forwarder;
    const byId = new Map(registered.map((e) => [e.replicaId, e]));
    const ids = [...new Set([...supervised.map((s) => s.replicaId), ...registered.map((e) => e.replicaId)])];
    return ids.map((id) => {
      const s = supervised.find((x) => x.replicaId === id);
      const e = byId.get(id);
      const load = e?.load;
      return {
        replica_id: id,
        service: e?.service ?? null,
        node: e?.node ?? null,
        state: s?.state ?? "registered",
        pid: s?.pid ?? null,
        restarts: s?.restarts ?? 0,
        last_exit: s?.lastExit ?? null,
        registered: e !== undefined,
        health: !e ? "unknown" : !e.available ? "draining" : !e.healthy ? "unhealthy" : f.outliers.isEjected(id) ? "ejected" : "healthy",
        http_endpoint: e?.httpEndpoint ?? null,
        in_flight: e?.inFlight ?? 0,
        queue_depth: load?.queue_depth ?? null,
        workers: load?.workers ?? null,
        cpu_percent: load?.process?.cpu_percent ?? null,
        memory_mb: load?.process?.rss_mb ?? null,
        circuits_open: e ? f.circuits.snapshot(id).filter((c) => c.state !== "closed").length : 0,
        stalled: e !== undefined && f.isStalled(e),
      };
    });
  }
}
