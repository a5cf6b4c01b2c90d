/**
 * The deployment controller's decisions, as one pure function: from what should run (`desired`),
 * what runs (`actual`, with the registry's health as data) and the time, the actions that bring
 * the second closer to the first. No I/O, no timers, no clock of its own: the controller
 * (`controller.ts`) calls it on every change and tick and carries the actions out through replica
 * handles. Every behaviour of a deployment is an outcome of this function:
 *
 * - **Scaling.** Each replica holds a slot (its id and GPU ids follow the slot); a new replica takes
 *   the lowest free slot. Going down, the replicas that leave (they drain) are those not serving
 *   yet (starting, down) — never a running replica while a starting one could go — then the idlest
 *   (fewest requests ongoing, as last reported), the highest slot on a tie. A service with GPUs
 *   keeps its slots dense instead (the highest leave): its GPU ids were placed per slot `0 … n-1`.
 * - **Crashes.** A replica that exited is started again after a back-off of 0.25 s doubling with
 *   each crash of the last 60 s up to 30 s; the 5th crash within 60 s gives it up (`crash_looping`):
 *   left down and reported until its service is changed, scaled or removed.
 * - **Unhealthy replicas.** One that runs but is unhealthy or unregistered for
 *   `monitoring.unhealthy_restart_after` seconds is killed; its exit counts as a crash.
 * - **Rolling replacement.** A replica whose config version differs is replaced slot by slot: the new
 *   one starts beside it (at most one extra replica per service), the old one drains only once the
 *   new one serves — so the number of serving replicas never drops below what served before. An
 *   outdated replica that is down is removed at once (nothing to keep); while a new-version replica
 *   crash-loops the roll stops, and the old replicas keep serving.
 *
 * An autoscaler plugs in by setting `DesiredService.replicas`; another way of running replicas
 * (Kubernetes) by implementing the handles the actions act on.
 */
import type { ServicePlacement } from "./placement.js";
import type { ReplicaPhase } from "./replica-handle.js";
import type { ResolvedServiceConfig } from "../config/resolve.js";

export const BACKOFF_BASE_MS = 250;
export const BACKOFF_MAX_MS = 30_000;
export const CRASH_LOOP_LIMIT = 5;
export const CRASH_LOOP_WINDOW_MS = 60_000;
/** Replicas a rolling replacement may run beyond the desired count. */
export const MAX_SURGE = 1;

export interface DesiredService {
  /** The resolved config; `monitoring.unhealthy_restart_after` is read from it (a live field). */
  config: ResolvedServiceConfig;
  /** The hash of its restart-type fields (`changes.ts`): replicas of another version are replaced. */
  version: string;
  /** How many replicas should run: the config's `deployment.replicas` today, an autoscaler's choice later. */
  replicas: number;
  /** Where they run: GPU ids per slot, or why this node cannot run the service (then none runs). */
  placement: ServicePlacement;
}

export interface DesiredState {
  services: Record<string, DesiredService>;
}

/** What the registry says of a replica: `serving` takes requests; `draining` was drained by an operator. */
export type ReplicaHealth = "serving" | "draining" | "unhealthy" | "unregistered";

export interface ObservedReplica {
  id: string;
  service: string;
  slot: number;
  version: string;
  phase: ReplicaPhase;
  /** Given up after a crash loop (by an earlier `give_up`). */
  crashLooping: boolean;
  health: ReplicaHealth;
  /** Why it is not serving (`3 failed health checks: …`), for the kill's reason. */
  healthDetail?: string | undefined;
  /** Since when it has been running but unhealthy or unregistered; null when serving or not running. */
  notServingSince: number | null;
  /** When it exited unexpectedly (crash, kill, failed start), oldest first; the last is its latest exit. */
  crashes: number[];
  /** Requests running or queued at it as last reported (unknown: treated as idle); which replicas leave first. */
  ongoing?: number | undefined;
}

export interface ActualState {
  replicas: ObservedReplica[];
}

export type Action =
  /** Make and start a new replica in `slot`. */
  | { type: "start"; service: string; slot: number; version: string; gpuIds: number[]; reason: string }
  /** Start an exited replica again (its back-off is over). */
  | { type: "restart"; id: string; reason: string }
  /** Drain and stop a replica (or clear away one that is down). */
  | { type: "stop"; id: string; reason: string }
  /** Kill a replica that runs but does not serve; its exit is handled like a crash. */
  | { type: "kill"; id: string; reason: string }
  /** Stop restarting a crash-looping replica; it stays down and is reported. */
  | { type: "give_up"; id: string; reason: string };

export interface Plan {
  actions: Action[];
  /** What is still under way (starting, draining, a back-off, a roll); empty with no actions: settled. */
  pending: string[];
  /** When something falls due (a back-off ends, an unhealthy replica's time is up); null: nothing. */
  wakeAt: number | null;
}

/** The back-off before restarting a replica that crashed `crashes` times within the window (≥ 1). */
export function backoffMs(crashes: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, crashes - 1));
}

/**
 * The actions that move `actual` towards `desired` at time `now` (ms).
 *
 * @example
 * const plan = reconcile({ services: { svc: { config, version, replicas: 2, placement } } }, { replicas: [] }, Date.now());
 * // plan.actions: start svc slot 0, start svc slot 1
 */
export function reconcile(desired: DesiredState, actual: ActualState, now: number): Plan {
  const plan = new PlanBuilder(now);
  const byService = new Map<string, ObservedReplica[]>();
  for (const name of Object.keys(desired.services)) byService.set(name, []);
  for (const r of actual.replicas) {
    if (r.phase === "stopped") continue;
    byService.set(r.service, [...(byService.get(r.service) ?? []), r]);
  }
  for (const [name, replicas] of byService) reconcileService(desired.services[name], replicas, plan);
  return plan.done();
}

function reconcileService(want: DesiredService | undefined, replicas: ObservedReplica[], plan: PlanBuilder): void {
  const n = want?.placement.status === "scheduled" ? want.replicas : 0;
  const kept: ObservedReplica[] = [];
  for (const r of replicas) {
    if (r.phase === "stopping") plan.pending(`${r.id} is draining`);
    else if (!want) plan.act({ type: "stop", id: r.id, reason: "its service was removed" });
    else if (r.version !== want.version && r.phase === "exited") plan.act({ type: "stop", id: r.id, reason: "outdated and down" });
    else kept.push(r);
  }
  if (!want) return;
  const slots = slotsToKeep(want, n, kept, plan);
  if (n === 0) return;
  const toRoll: number[] = [];
  let newVersionCrashLoops = false;
  for (const slot of slots) {
    const outcome = reconcileSlot(
      want,
      slot,
      kept.filter((r) => r.slot === slot),
      plan,
    );
    if (outcome === "waits_to_roll") toRoll.push(slot);
    if (outcome === "crash_loops") newVersionCrashLoops = true;
  }
  // One extra replica at a time: the next slot rolls once the last old replica has drained. While
  // the new version crash-loops (reported), the roll stops and the old replicas keep serving.
  if (newVersionCrashLoops) return;
  // Replicas holding a process now or soon (an exited one of this version restarts), and new ones.
  let alive = replicas.filter(
    (r) => r.phase !== "exited" || (r.version === want.version && slots.includes(r.slot) && !r.crashLooping),
  ).length;
  alive += plan.startsOf(want.placement.service);
  for (const slot of toRoll) {
    if (alive >= n + MAX_SURGE) plan.pending(`rolling: slot ${slot} waits its turn`);
    else {
      plan.act(startIn(want, slot, "rolling update"));
      alive++;
    }
  }
}

/**
 * The `n` slots the service keeps, ascending: the occupied ones, less those whose replicas leave
 * (stopped here, each draining) when there are more than `n`, plus the lowest free ones when
 * there are fewer.
 */
function slotsToKeep(want: DesiredService, n: number, kept: ObservedReplica[], plan: PlanBuilder): number[] {
  const occupied = new Map<number, ObservedReplica[]>();
  for (const r of kept) occupied.set(r.slot, [...(occupied.get(r.slot) ?? []), r]);
  const unschedulable = want.placement.status === "unschedulable";
  const dense = (want.config.resources.gpu_count ?? 0) > 0;
  const ranked = [...occupied].map(([slot, here]) => ({ slot, best: here.sort(byReadiness)[0]! }));
  ranked.sort((a, b) => (dense ? b.slot - a.slot : leaveFirst(a, b)));
  const leaving = ranked.slice(0, Math.max(0, occupied.size - n));
  for (const { slot, best } of leaving) {
    const why = unschedulable ? "unschedulable here" : dense ? "scaled down" : `scaled down (${leaveReason(best)})`;
    for (const r of occupied.get(slot)!) plan.act({ type: "stop", id: r.id, reason: why });
  }
  const keep = new Set(ranked.slice(leaving.length).map((x) => x.slot));
  for (let slot = 0; keep.size < n; slot++) if (!occupied.has(slot)) keep.add(slot);
  return [...keep].sort((a, b) => a - b);
}

/** Which of two slots leaves first: the one not serving (yet), then the idler, then the higher. */
function leaveFirst(a: { slot: number; best: ObservedReplica }, b: { slot: number; best: ObservedReplica }): number {
  const rank = (r: ObservedReplica): number => (serving(r) ? 1 : 0);
  return rank(a.best) - rank(b.best) || (a.best.ongoing ?? 0) - (b.best.ongoing ?? 0) || b.slot - a.slot;
}

function leaveReason(r: ObservedReplica): string {
  if (!serving(r)) return `not serving: ${r.phase === "running" ? r.health : r.phase}`;
  const ongoing = r.ongoing ?? 0;
  return ongoing === 0 ? "idle" : `the least busy: ${ongoing} request(s) ongoing, which it finishes`;
}

type SlotOutcome = "ok" | "waits_to_roll" | "crash_loops";

/** One slot: its replica of the current version, and until that one serves, one outdated replica holding the place. */
function reconcileSlot(want: DesiredService, slot: number, here: ObservedReplica[], plan: PlanBuilder): SlotOutcome {
  const [current, ...extra] = here.filter((r) => r.version === want.version).sort(byReadiness);
  // One outdated replica per slot is enough to hold its place until the new one serves: after
  // an apply during a roll, the half-started replica of the previous apply leaves.
  const [holder, ...superseded] = here.filter((r) => r.version !== want.version).sort(byReadiness);
  for (const r of [...extra, ...superseded]) plan.act({ type: "stop", id: r.id, reason: `slot ${slot} has ${(current ?? holder)!.id}` });
  const after = want.config.monitoring.unhealthy_restart_after;
  if (!current) {
    if (!holder) plan.act(startIn(want, slot, "empty slot"));
    else killIfNotServing(holder, after, plan);
    return holder ? "waits_to_roll" : "ok";
  }
  if (serving(current)) {
    if (holder) plan.act({ type: "stop", id: holder.id, reason: `replaced by ${current.id}` });
    return "ok";
  }
  if (holder) killIfNotServing(holder, after, plan);
  if (current.phase === "exited") {
    restartOrGiveUp(current, plan);
    return current.crashLooping ? "crash_loops" : "ok";
  }
  killIfNotServing(current, after, plan);
  if (holder) plan.pending(`rolling: ${holder.id} serves until ${current.id} does`);
  else if (current.phase === "starting" || current.phase === "created") plan.pending(`${current.id} is starting`);
  return "ok";
}

function startIn(want: DesiredService, slot: number, reason: string): Action {
  return {
    type: "start",
    service: want.placement.service,
    slot,
    version: want.version,
    gpuIds: want.placement.replicas[slot]?.gpuIds ?? [],
    reason,
  };
}

function restartOrGiveUp(r: ObservedReplica, plan: PlanBuilder): void {
  if (r.crashLooping) return;
  const last = r.crashes[r.crashes.length - 1] ?? plan.now;
  const recent = r.crashes.filter((t) => last - t < CRASH_LOOP_WINDOW_MS).length;
  if (recent >= CRASH_LOOP_LIMIT) {
    plan.act({ type: "give_up", id: r.id, reason: `${recent} crashes within ${CRASH_LOOP_WINDOW_MS / 1000} s` });
    return;
  }
  const wait = backoffMs(recent);
  if (plan.now >= last + wait) {
    plan.act({
      type: "restart",
      id: r.id,
      reason: `after a back-off of ${wait} ms (crash ${recent} within ${CRASH_LOOP_WINDOW_MS / 1000} s)`,
    });
  } else {
    plan.pending(`${r.id} restarts in ${last + wait - plan.now} ms`);
    plan.wakeAt(last + wait);
  }
}

function killIfNotServing(r: ObservedReplica, afterSeconds: number | null, plan: PlanBuilder): void {
  if (r.phase !== "running" || r.notServingSince === null || afterSeconds === null) return;
  const due = r.notServingSince + afterSeconds * 1000;
  if (plan.now >= due) plan.act({ type: "kill", id: r.id, reason: `not serving for ${afterSeconds} s (${r.healthDetail ?? r.health})` });
  else plan.wakeAt(due);
}

const serving = (r: ObservedReplica): boolean => r.phase === "running" && r.health === "serving";

/** Serving first, then running, starting, down; the first of a slot is the one kept. */
function byReadiness(a: ObservedReplica, b: ObservedReplica): number {
  const rank = (r: ObservedReplica): number =>
    serving(r) ? 0 : r.phase === "running" ? 1 : r.phase === "starting" || r.phase === "created" ? 2 : r.crashLooping ? 4 : 3;
  return rank(a) - rank(b);
}

class PlanBuilder {
  readonly #actions: Action[] = [];
  readonly #pending: string[] = [];
  #wakeAt: number | null = null;

  constructor(readonly now: number) {}

  act(a: Action): void {
    this.#actions.push(a);
  }

  /** Replicas of `service` this plan starts. */
  startsOf(service: string): number {
    return this.#actions.filter((a) => a.type === "start" && a.service === service).length;
  }

  pending(what: string): void {
    this.#pending.push(what);
  }

  wakeAt(t: number): void {
    this.#wakeAt = this.#wakeAt === null ? t : Math.min(this.#wakeAt, t);
  }

  done(): Plan {
    return { actions: this.#actions, pending: this.#pending, wakeAt: this.#wakeAt };
  }
}
