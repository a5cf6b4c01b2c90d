/**
 * The deployment controller behind `anyserve up`, `anyserve apply`, `/api/scale` and the
 * Environment API: a small loop around the pure `reconcile()` (`reconcile.ts`). `apply` and
 * `scale` set the desired state; a pass — run after every change of desired state, every phase
 * change of a replica, every routing change in the registry (health), and on a tick — observes the
 * replicas, asks `reconcile` what to do, and does it through their handles (`replica-handle.ts`).
 * Passes are serialised (one at a time, never re-entered), so an `apply` during a rolling update
 * simply changes where the next pass heads. Services with an `autoscaling` section get their count
 * from their autoscaler (`autoscaling.ts`) instead of `deployment.replicas`; what it reads of its
 * replicas' load and health from the registry is `registry-readings.ts`; what it has seen of each
 * replica it started (phase, crashes, not serving since), and how that reads to `reconcile` and to
 * `status()`, is `tracked-replica.ts`.
 */
import type { ServicePolicies } from "../gateway/policies.js";
import type { Logger } from "../util/logger.js";
import { configVersion, diffFields, type FieldChange } from "./changes.js";
import type { Decision } from "./autoscaler.js";
import { Autoscaling, type ColdStartControl } from "./autoscaling.js";
import { policyFieldsOf } from "./gateway-options.js";
import type { CpuCapper } from "./cpu-cap.js";
import { localReplicas } from "./local-replica.js";
import { place, type NodeCapacity, type ServicePlacement } from "./placement.js";
import { CRASH_LOOP_LIMIT, reconcile, type Action, type DesiredState } from "./reconcile.js";
import type { ReplicaFactory, ReplicaSpec, ReplicaStatus } from "./replica-handle.js";
import { resolveService } from "../config/resolve.js";
import type { DeploymentFile, ServiceConfig } from "../config/schema.js";
import type { AutoscalingView } from "../gateway/status.js";
import { type HealthSource, ongoingOf, servingOf } from "./registry-readings.js";
import { observe, statusOf, type Tracked } from "./tracked-replica.js";

/** Time for the loop; tests pass a fake one. */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; returns a cancel function. Must not keep the process alive. */
  schedule(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(fn, ms) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

interface CommonOptions {
  node: NodeCapacity;
  logger: Logger;
  registry: HealthSource;
  /** The API server's per-service routing policies: set from each service's config (live fields). */
  policies?: ServicePolicies;
  clock?: Clock;
  /** The longest the loop waits without being woken (ms; default 1000). */
  tickMs?: number;
  /**
   * The API server's cold starts (gateway/cold-start.ts): without them a service autoscaled with
   * `min_replicas: 0` never goes below one replica, as nothing could wake it again.
   */
  coldStarts?: ColdStartControl | undefined;
}

export type ControllerOptions = CommonOptions &
  (
    | { /** How replicas run (a fake in tests). */ replicas: ReplicaFactory }
    | {
        /** Local processes registering here. */
        apiServerUrl: string;
        /** The control-plane token the replicas register with (handed over in their environment). */
        token?: string | undefined;
        /** The inference token the replicas require (in their environment too). */
        inferenceToken?: string | undefined;
        /** How `cpu_cores` caps replicas here (default: found on this machine, `cpuCapper()`). */
        cpu?: CpuCapper | undefined;
      }
  );

export interface ServiceReport {
  status: "scheduled" | "unschedulable" | "removed";
  reason?: string;
  /** Replicas wanted now: `deployment.replicas`, or the autoscaler's count. */
  replicas: number;
  /** Fields that changed and how they were applied. */
  changed: FieldChange[];
}

export class DeploymentController {
  readonly #o: CommonOptions;
  readonly #factory: ReplicaFactory;
  readonly #clock: Clock;
  readonly #tickMs: number;
  #config: DeploymentFile | undefined;
  #placements = new Map<string, ServicePlacement>();
  /** Desired replicas per service, apart from the config (`scale` and the autoscalers set it). */
  #counts: Record<string, number> = {};
  readonly #autoscaling: Autoscaling;
  #desired: DesiredState = { services: {} };
  /** Replicas by id, in creation order. */
  readonly #tracked = new Map<string, Tracked>();
  /** Every replica id used so far: a new replica never takes the id of a live (or draining) one. */
  readonly #usedIds = new Set<string>();
  /** Resolved when a pass finds nothing to do and nothing under way. */
  #waiters: (() => void)[] = [];
  #passQueued = false;
  #cancelTimer: (() => void) | undefined;
  #closed = false;
  /**
   * Restarts asked for by `apply(file, {restart})`, per service: part of the service's version, so
   * its replicas are replaced (rolling, as for a changed restart-type field) although its config
   * is the same — the repository's load of a changed model.py/model.ts, whose file the config only names.
   */
  readonly #revisions = new Map<string, number>();

  constructor(options: ControllerOptions) {
    this.#o = options;
    this.#factory =
      "replicas" in options
        ? options.replicas
        : localReplicas({
            apiServerUrl: options.apiServerUrl,
            nodeName: options.node.name,
            token: options.token,
            inferenceToken: options.inferenceToken,
            cpu: options.cpu,
          });
    this.#clock = options.clock ?? systemClock;
    this.#tickMs = options.tickMs ?? 1_000;
    options.registry.onRoutingChange(() => this.#requestPass());
    this.#autoscaling = new Autoscaling(
      {
        clock: this.#clock,
        logger: options.logger,
        node: options.node,
        current: () => ({ file: this.#config, counts: this.#counts }),
        ongoing: (service) => ongoingOf(options.registry, this.#tracked.values(), service),
        serving: (service) => servingOf(options.registry, this.#tracked.values(), service),
        setCount: (service, n, decision) => this.#setCount(service, n, decision),
      },
      options.coldStarts,
    );
  }

  /** This node's name, labels and capacity. */
  get node(): NodeCapacity {
    return this.#o.node;
  }

  get config(): DeploymentFile | undefined {
    return this.#config;
  }

  /**
   * Makes `file` the desired deployment and resolves once it is reached (every replica serving or
   * given up, nothing starting or draining). Rejects with PlacementError before changing anything.
   * A later apply supersedes this one at once; both resolve when the later one is reached.
   * `restart` names services whose replicas are replaced even when their config is unchanged.
   */
  async apply(file: DeploymentFile, o: { restart?: readonly string[] } = {}): Promise<Record<string, ServiceReport>> {
    for (const s of o.restart ?? []) this.#revisions.set(s, (this.#revisions.get(s) ?? 0) + 1);
    const counts = Object.fromEntries(Object.entries(file.services).map(([name, s]) => [name, s.deployment.replicas]));
    return this.#setDesired(file, { ...counts, ...this.#autoscaling.countsFor(file, this.#counts) });
  }

  /** Sets one service's replica count (the management API's "scale"); refused for an autoscaled service. */
  async scale(service: string, replicas: number): Promise<Record<string, ServiceReport>> {
    const cfg = this.#config;
    if (!cfg?.services[service]) throw new Error(`no service '${service}' is deployed`);
    this.#autoscaling.refuseManualScale(service);
    const next: DeploymentFile = structuredClone(cfg);
    next.services[service]!.deployment.replicas = replicas;
    return this.#setDesired(next, { ...this.#counts, [service]: replicas });
  }

  status(): {
    services: Record<
      string,
      {
        placement: ServicePlacement["status"];
        reason?: string;
        config: ServiceConfig;
        replicas: ReplicaStatus[];
        /** For an autoscaled service: its bounds, load, desired and running counts, and its last decisions. */
        autoscaling?: AutoscalingView | undefined;
      }
    >;
  } {
    const services: ReturnType<DeploymentController["status"]>["services"] = {};
    const all = [...this.#tracked.values()].sort((a, b) => a.handle.spec.slot - b.handle.spec.slot);
    for (const [name, config] of Object.entries(this.#config?.services ?? {})) {
      const p = this.#placements.get(name);
      services[name] = {
        placement: p?.status ?? "scheduled",
        ...(p?.status === "unschedulable" ? { reason: p.reason } : {}),
        config,
        replicas: all.filter((t) => t.handle.spec.service === name).map(statusOf),
        autoscaling: this.#autoscaling.view(name, this.#counts[name] ?? 0),
      };
    }
    return { services };
  }

  /** Stops every replica (each drains), e.g. on Ctrl-C; the controller does nothing more after. */
  async stopAll(): Promise<void> {
    this.#closed = true;
    this.#autoscaling.stop();
    this.#desired = { services: {} };
    await this.#settled();
    this.#cancelTimer?.();
  }

  async #setDesired(file: DeploymentFile, counts: Record<string, number>): Promise<Record<string, ServiceReport>> {
    if (this.#closed) throw new Error("the deployment is stopping");
    const placements = place(file, this.#o.node, counts);
    const previous = this.#config;
    const report: Record<string, ServiceReport> = {};
    const desired: DesiredState = { services: {} };
    for (const p of placements) {
      // Resolved once here: every replica of this version gets this very value.
      const cfg = resolveService(file.services[p.service]!, { source: `services.${p.service}` });
      const replicas = p.status === "scheduled" ? (counts[p.service] ?? cfg.deployment.replicas) : 0;
      const revision = this.#revisions.get(p.service);
      const version = revision === undefined ? configVersion(cfg) : `${configVersion(cfg)}-r${revision}`;
      desired.services[p.service] = { config: cfg, version, replicas, placement: p };
      this.#o.policies?.set(p.service, policyFieldsOf(cfg));
      // Resolved against resolved: a default the machine decides is not a change.
      const changed = diffFields(this.#desired.services[p.service]?.config, cfg);
      if (p.status === "unschedulable") {
        report[p.service] = { status: "unschedulable", reason: p.reason, replicas: 0, changed };
        this.#o.logger.warn({ service: p.service, reason: p.reason }, "service is unschedulable on this node");
      } else {
        report[p.service] = { status: "scheduled", replicas, changed };
      }
    }
    for (const name of Object.keys(previous?.services ?? {})) {
      if (file.services[name]) continue;
      this.#o.policies?.delete(name);
      report[name] = { status: "removed", replicas: 0, changed: [] };
    }
    const before = this.#counts;
    const replaced = new Set(
      Object.keys(desired.services).filter(
        (n) => this.#desired.services[n] && this.#desired.services[n]!.version !== desired.services[n]!.version,
      ),
    );
    this.#config = file;
    this.#counts = counts;
    this.#placements = new Map(placements.map((p) => [p.service, p]));
    this.#desired = desired;
    this.#autoscaling.configure(file, before, counts, replaced);
    await this.#settled();
    return report;
  }

  /** An autoscaler's decision: the service's new count, placed, and the loop told. */
  #setCount(service: string, n: number, decision: Decision): void {
    const file = this.#config;
    const want = this.#desired.services[service];
    if (!file || !want || this.#closed) return;
    const counts = { ...this.#counts, [service]: n };
    let placement: ServicePlacement | undefined;
    try {
      placement = place(file, this.#o.node, counts).find((p) => p.service === service);
    } catch (err) {
      this.#o.logger.warn({ service, to: n, err: (err as Error).message }, "autoscaler: the new count does not fit; keeping the old one");
      return;
    }
    if (!placement) return;
    this.#counts = counts;
    this.#placements.set(service, placement);
    this.#desired = { services: { ...this.#desired.services, [service]: { ...want, replicas: n, placement } } };
    this.#o.logger.info(
      { service, from: decision.from, to: decision.to, reason: decision.reason, detail: decision.detail },
      "autoscaler: scaling",
    );
    this.#requestPass();
  }

  /** Resolves at the next pass that finds the desired state reached. */
  #settled(): Promise<void> {
    const done = new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#requestPass();
    return done;
  }

  #requestPass(): void {
    if (this.#passQueued) return;
    this.#passQueued = true;
    queueMicrotask(() => {
      this.#passQueued = false;
      this.#pass();
    });
  }

  /** One pass: observe, decide, act. Synchronous, so passes never overlap. */
  #pass(): void {
    const now = this.#clock.now();
    const observed = [...this.#tracked.values()].map((t) => observe(t, this.#o.registry, now));
    const plan = reconcile(this.#desired, { replicas: observed }, now);
    for (const action of plan.actions) this.#execute(action, now);
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (!this.#closed) {
      const at = Math.min(plan.wakeAt ?? Number.POSITIVE_INFINITY, now + this.#tickMs);
      this.#cancelTimer = this.#clock.schedule(() => this.#requestPass(), Math.max(0, at - now));
    }
    if (plan.actions.length === 0 && plan.pending.length === 0) {
      for (const resolve of this.#waiters.splice(0)) resolve();
    }
  }

  #execute(action: Action, now: number): void {
    const log = this.#o.logger;
    const a = this.#closed ? { ...action, reason: "the deployment is stopping" } : action;
    if (a.type === "start") {
      const spec = this.#specFor(a);
      log.info({ replica: spec.replicaId, slot: a.slot, version: a.version, reason: a.reason }, "starting a replica");
      const handle = this.#factory(spec);
      const t: Tracked = { handle, phase: handle.phase, crashes: [], crashLooping: false, notServingSince: null };
      this.#tracked.set(spec.replicaId, t);
      handle.onChange(() => this.#changed(t));
      handle.start();
      return;
    }
    const t = this.#tracked.get(a.id);
    if (!t) return;
    switch (a.type) {
      case "restart":
        log.info({ replica: a.id, reason: a.reason }, "restarting a replica");
        t.handle.start();
        break;
      case "stop":
        log.info({ replica: a.id, reason: a.reason }, "stopping a replica");
        void t.handle.stop();
        break;
      case "kill":
        log.warn(
          { replica: a.id, pid: t.handle.info().pid, reason: a.reason },
          "killing a replica that is alive but not serving, to replace it",
        );
        // Its grace starts over: the next kill, if any, comes a full period later, not on the next pass.
        t.notServingSince = now;
        t.handle.kill(a.reason);
        break;
      case "give_up":
        log.error({ replica: a.id, reason: a.reason, lastExit: t.handle.info().lastExit }, "replica is crash-looping; not restarting it");
        t.crashLooping = true;
        this.#requestPass();
        break;
    }
  }

  #specFor(a: Extract<Action, { type: "start" }>): ReplicaSpec {
    let replicaId = `${a.service}-${a.slot}`;
    for (let k = 2; this.#usedIds.has(replicaId); k++) replicaId = `${a.service}-${a.slot}-r${k}`;
    this.#usedIds.add(replicaId);
    const config = this.#desired.services[a.service]!.config;
    return { replicaId, service: a.service, slot: a.slot, version: a.version, config, gpuIds: a.gpuIds };
  }

  /** A handle's phase changed: note crashes, forget stopped replicas, and look again. */
  #changed(t: Tracked): void {
    const phase = t.handle.phase;
    if (phase === t.phase) return;
    t.phase = phase;
    const id = t.handle.spec.replicaId;
    if (phase === "exited") {
      t.crashes = [...t.crashes, this.#clock.now()].slice(-CRASH_LOOP_LIMIT);
      t.notServingSince = null;
      this.#o.registry.unregister(id);
      this.#o.logger.warn({ replica: id, exit: t.handle.info().lastExit }, "replica exited");
    } else if (phase === "stopped") {
      this.#tracked.delete(id);
      this.#o.registry.unregister(id);
    }
    this.#requestPass();
  }
}
