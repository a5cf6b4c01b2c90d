/**
 * The deployment controller behind `anyserve up` and `anyserve apply`: it turns a validated
 * deployment file into replica processes on this node and keeps them there. Applying a changed
 * file scales services up and down (a replica being removed drains first), and replaces the
 * replicas of a service whose restart-type fields changed one at a time — the new one is serving
 * before the old one drains — so no request is dropped.
 */
import type { ServicePolicies } from "../gateway/policies.js";
import type { Registry } from "../routing/registry.js";
import { policyFieldsOf } from "./gateway-options.js";
import type { Logger } from "../util/logger.js";
import { place, type NodeCapacity, type ServicePlacement } from "./placement.js";
import { UPDATE_TYPES, type DeploymentFile, type ServiceConfig } from "./schema.js";
import { ReplicaProcess, type ReplicaStatus } from "./supervisor.js";
import { replicaArgs, replicaEnv } from "./replica-args.js";
import { UnhealthyReplacer, type Replaceable } from "./unhealthy-replacer.js";

export interface ControllerOptions {
  apiServerUrl: string;
  registry: Registry;
  /** The API server's per-service routing policies: set from each service's config (live fields). */
  policies?: ServicePolicies;
  node: NodeCapacity;
  logger: Logger;
  token?: string | undefined;
}

export interface ServiceReport {
  status: "scheduled" | "unschedulable" | "removed";
  reason?: string;
  replicas: number;
  /** Fields that changed and how they were applied. */
  changed: { field: string; applied: "live" | "restart" }[];
}

export class DeploymentController {
  readonly #o: ControllerOptions;
  #config: DeploymentFile | undefined;
  #placements = new Map<string, ServicePlacement>();
  /** Running replica processes by service, in index order. */
  readonly #replicas = new Map<string, ReplicaProcess[]>();
  /** Every replica id used so far: a replacement never reuses a live (or draining) replica's id. */
  readonly #usedIds = new Set<string>();
  #applying: Promise<unknown> = Promise.resolve();

  readonly #replacer: UnhealthyReplacer;

  constructor(options: ControllerOptions) {
    this.#o = options;
    this.#replacer = new UnhealthyReplacer({ registry: options.registry, logger: options.logger, running: () => this.#runningReplicas() });
  }

  /** Supervised replicas whose process runs, with their service's `unhealthy_restart_after`. */
  #runningReplicas(): Replaceable[] {
    const out: Replaceable[] = [];
    for (const [service, list] of this.#replicas) {
      const after = this.#config?.services[service]?.monitoring.unhealthy_restart_after ?? null;
      for (const proc of list) {
        if (proc.state !== "running") continue;
        out.push({
          replicaId: proc.spec.replicaId,
          restartAfterMs: after === null ? null : after * 1000,
          replace: (reason) => proc.replace(reason),
        });
      }
    }
    return out;
  }

  /** This node's name, labels and capacity. */
  get node(): NodeCapacity {
    return this.#o.node;
  }

  get config(): DeploymentFile | undefined {
    return this.#config;
  }

  /** Applies a deployment (serialised: one apply at a time). Throws PlacementError before changing anything. */
  apply(file: DeploymentFile): Promise<Record<string, ServiceReport>> {
    const run = this.#applying.then(() => this.#apply(file));
    this.#applying = run.catch(() => undefined);
    return run;
  }

  /** Sets one service's replica count (the management API's "scale"). */
  scale(service: string, replicas: number): Promise<Record<string, ServiceReport>> {
    const cfg = this.#config;
    if (!cfg?.services[service]) return Promise.reject(new Error(`no service '${service}' is deployed`));
    const next: DeploymentFile = structuredClone(cfg);
    next.services[service]!.deployment.replicas = replicas;
    return this.apply(next);
  }

  status(): {
    services: Record<string, { placement: ServicePlacement["status"]; reason?: string; config: ServiceConfig; replicas: ReplicaStatus[] }>;
  } {
    const services: ReturnType<DeploymentController["status"]>["services"] = {};
    for (const [name, cfg] of Object.entries(this.#config?.services ?? {})) {
      const p = this.#placements.get(name);
      services[name] = {
        placement: p?.status ?? "scheduled",
        ...(p?.status === "unschedulable" ? { reason: p.reason } : {}),
        config: cfg,
        replicas: (this.#replicas.get(name) ?? []).map((r) => r.status()),
      };
    }
    return { services };
  }

  /** Stops every replica (each drains), e.g. on Ctrl-C. */
  async stopAll(): Promise<void> {
    this.#replacer.stop();
    const all = [...this.#replicas.values()].flat();
    this.#replicas.clear();
    await Promise.all(all.map((r) => r.stop()));
  }

  async #apply(file: DeploymentFile): Promise<Record<string, ServiceReport>> {
    const placements = place(file, this.#o.node);
    const previous = this.#config;
    this.#config = file;
    this.#placements = new Map(placements.map((p) => [p.service, p]));
    const report: Record<string, ServiceReport> = {};
    // Services are independent: start (or change) them all at once.
    await Promise.all(
      placements.map(async (p) => {
        const cfg = file.services[p.service]!;
        const changed = diffFields(previous?.services[p.service], cfg);
        this.#o.policies?.set(p.service, policyFieldsOf(cfg));
        if (p.status === "unschedulable") {
          await this.#scaleTo(p.service, cfg, 0, p);
          report[p.service] = { status: "unschedulable", reason: p.reason, replicas: 0, changed };
          this.#o.logger.warn({ service: p.service, reason: p.reason }, "service is unschedulable on this node");
          return;
        }
        if (changed.some((c) => c.applied === "restart")) await this.#rollingReplace(p.service, cfg, p);
        await this.#scaleTo(p.service, cfg, cfg.deployment.replicas, p);
        report[p.service] = { status: "scheduled", replicas: cfg.deployment.replicas, changed };
      }),
    );
    for (const name of this.#replicas.keys()) {
      if (!file.services[name]) {
        await this.#scaleTo(name, undefined, 0, undefined);
        this.#replicas.delete(name);
        this.#o.policies?.delete(name);
        report[name] = { status: "removed", replicas: 0, changed: [] };
      }
    }
    return report;
  }

  async #scaleTo(service: string, cfg: ServiceConfig | undefined, n: number, p: ServicePlacement | undefined): Promise<void> {
    const list = this.#replicas.get(service) ?? [];
    this.#replicas.set(service, list);
    const starting: Promise<void>[] = [];
    while (cfg && p && list.length < n) {
      const proc = this.#spawn(service, cfg, p, list.length);
      list.push(proc);
      starting.push(proc.start());
    }
    await Promise.all(starting);
    // Scale down from the end; each leaving replica unregisters first, then drains.
    const leaving = list.splice(n);
    await Promise.all(leaving.map((r) => r.stop()));
  }

  async #rollingReplace(service: string, cfg: ServiceConfig, p: ServicePlacement): Promise<void> {
    const list = this.#replicas.get(service) ?? [];
    for (let i = 0; i < list.length; i++) {
      const fresh = this.#spawn(service, cfg, p, i);
      await fresh.start();
      const old = list[i]!;
      list[i] = fresh;
      await old.stop();
    }
  }

  #spawn(service: string, cfg: ServiceConfig, p: ServicePlacement, index: number): ReplicaProcess {
    let replicaId = `${service}-${index}`;
    for (let k = 2; this.#usedIds.has(replicaId); k++) replicaId = `${service}-${index}-r${k}`;
    this.#usedIds.add(replicaId);
    const gpuIds = p.replicas[index]?.gpuIds ?? [];
    const spec = {
      replicaId,
      service,
      args: replicaArgs({ service, cfg, replicaId, apiServer: this.#o.apiServerUrl, nodeName: this.#o.node.name }),
      env: replicaEnv(cfg, gpuIds, this.#o.token),
    };
    // A replica that dies is taken out of the registry at once, not after 3 missed heartbeats.
    return new ReplicaProcess(spec, this.#o.logger, (r) => this.#o.registry.unregister(r.spec.replicaId));
  }
}

/** Which fields differ, and whether each applies live or needs the replicas replaced. */
export function diffFields(before: ServiceConfig | undefined, after: ServiceConfig): ServiceReport["changed"] {
  if (!before) return [];
  const out: ServiceReport["changed"] = [];
  if (before.app !== after.app) out.push({ field: "app", applied: "restart" });
  for (const section of ["deployment", "resources", "performance", "monitoring"] as const) {
    const a = before[section] as Record<string, unknown>;
    const b = after[section] as Record<string, unknown>;
    for (const key of Object.keys(b)) {
      if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) {
        const field = `${section}.${key}`;
        out.push({ field, applied: UPDATE_TYPES[field] ?? "restart" });
      }
    }
  }
  return out;
}
