/**
 * How many workers a group wants (worker-group.ts; a `pool` grows and shrinks by it): the rule
 * replicas follow too (util/scaling.ts) — the load is the jobs ongoing plus queued, and it needs
 * `ceil(load / WORKER_TARGET)` workers within `[min, max]`. The group starts the missing ones at
 * once and stops the surplus once idle for `idleMs`, the idle extra ones only.
 *
 * Plain functions over the group's slots and queue; {@link workersWanted} runs on every dispatch
 * (the group's `grow`, when below `max`), allocating nothing.
 *
 * @example
 * ```ts
 * const wanted = workersWanted(waiting, inFlight, perWorker, min, max);
 * for (let live = liveWorkers(slots); live < wanted; live++) spawn();
 * for (const s of idleSurplus(slots, wanted, Date.now(), idleMs)) stop(s);
 * ```
 */
import { unitsFor } from "../util/scaling.js";
import type { Job, Slot } from "./job.js";
import { accepts } from "./worker-pick.js";

/**
 * Jobs ongoing or queued per worker the pool aims at: one, as a worker runs one job at a time (the
 * pipeline's second job only hides the hop). A replica's `target_ongoing_requests` is per replica.
 */
const WORKER_TARGET = 1;

/**
 * Workers the load (`inFlight`: jobs ongoing + queued) needs now, within `[min, max]`. Queued pinned
 * jobs wait for their own (`min`) worker: more workers would not run them sooner.
 */
export function workersWanted(waiting: readonly Job[], inFlight: number, perWorker: number, min: number, max: number): number {
  let pinnedWaiting = 0;
  for (const j of waiting) if (j.pin !== undefined) pinnedWaiting++;
  return unitsFor(inFlight - pinnedWaiting, WORKER_TARGET * perWorker, min, max);
}

/** Workers not being stopped: slots being stopped stay in the group until their worker exits. */
export function liveWorkers(slots: Iterable<Slot>): number {
  let live = 0;
  for (const s of slots) if (s.state !== "stopping") live++;
  return live;
}

/**
 * The workers to stop so that `keep` stay: extra ones (no home place, so never the `min` ones),
 * taking jobs but holding none, idle for `idleMs` at `now` — a worker with a job is never stopped.
 */
export function idleSurplus(slots: Iterable<Slot>, keep: number, now: number, idleMs: number): Slot[] {
  const out: Slot[] = [];
  // Counting only the live slots, or one pass would stop every idle worker, those `min` keeps included.
  let live = liveWorkers(slots);
  for (const s of slots) {
    if (live <= keep) break;
    if (s.home === undefined && accepts(s) && s.jobs.length === 0 && now - s.idleSince >= idleMs) {
      live--;
      out.push(s);
    }
  }
  return out;
}
