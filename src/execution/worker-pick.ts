/**
 * Which worker of a group a job goes to (worker-group.ts's pipelined dispatch): its pinned worker,
 * else the warm worker holding the fewest jobs, below the pipeline depth the group allows, that
 * started the job's handler and holds no other handler's jobs it would queue behind.
 *
 * Plain functions over the group's slots, called for each waiting job on the dispatch path: they
 * take scalars, allocate nothing and keep no state of their own.
 *
 * @example
 * ```ts
 * if (hasRoom(slots, depth.cheap)) {
 *   const slot = pickSlot(slots, job, job.moves ? 1 : depth.normal, min, perWorker);
 *   if (slot) job.sendTo(slot);
 * }
 * ```
 */
import type { Job, Slot } from "./job.js";

/** Warm, and not starting or stopping a handler (whose hook would run ahead of the job). */
export function accepts(s: Slot): boolean {
  return s.state === "warm" && s.opening.size === 0 && s.closing.size === 0;
}

/** Some worker could take a job now (a quick test before looking at each waiting job); `maxDepth`: the deepest pipeline. */
export function hasRoom(slots: Iterable<Slot>, maxDepth: number): boolean {
  for (const s of slots) if (accepts(s) && s.jobs.length < maxDepth) return true;
  return false;
}

/**
 * The worker for `job`, holding fewer than `limit` jobs: with a pin, the worker in place
 * `pin % min` or none (a pinned job waits for its own worker); else the one with the fewest jobs.
 * A job whose body moves is given `limit` 1: it waits for an idle worker.
 */
export function pickSlot(slots: Iterable<Slot>, job: Job, limit: number, min: number, perWorker: number): Slot | undefined {
  if (job.pin !== undefined) {
    const home = job.pin % min;
    for (const s of slots) if (s.home === home && s.state !== "stopping") return fits(s, job, limit, perWorker) ? s : undefined;
    return undefined;
  }
  let best: Slot | undefined;
  for (const s of slots) {
    if (fits(s, job, limit, perWorker) && (!best || s.jobs.length < best.jobs.length)) best = s;
  }
  return best;
}

/**
 * A job goes where it starts at once (fewer than `perWorker` jobs there: a Python `async` worker
 * runs several of any handlers side by side), or queues behind jobs of its own handler only.
 */
function fits(s: Slot, job: Job, limit: number, perWorker: number): boolean {
  if (!accepts(s) || !s.open.has(job.h) || s.jobs.length >= limit) return false;
  return s.jobs.length < perWorker || s.jobs.every((j) => j.h === job.h);
}
