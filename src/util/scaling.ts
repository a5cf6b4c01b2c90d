/**
 * The one rule by which counts follow load — a service's replicas (`deploy/autoscaler.ts`) and a
 * pool's worker threads (`execution/worker-group.ts`) alike: the load is the requests ongoing
 * plus those queued; it needs `ceil(load / target)` units within `[min, max]`; and a change is
 * made only once it has been wanted for a while (a delay up, another down), so a load that
 * wobbles around a boundary does not make the count flap.
 *
 * @example
 * ```ts
 * unitsFor(5, 2, 1, 4); // 3: 5 requests at 2 per replica
 * unitsFor(0, 2, 1, 4); // 1: no load needs the minimum, never more
 * const h = new ScaleHysteresis(30_000, 600_000);
 * h.next(0, 1, 3);       // undefined: wanted since 0, not yet for 30 s
 * h.next(30_000, 1, 3);  // 3
 * ```
 */

/**
 * Units (replicas, workers) a load needs: `ceil(load / target)` clamped to `[min, max]`. No load
 * (or a negative one) needs `min`: zero traffic never grows anything.
 */
export function unitsFor(load: number, target: number, min: number, max: number): number {
  if (!(load > 0)) return min;
  // A load of exactly n × target needs n, not n + 1 after a rounding error in the average.
  const needed = Math.ceil(load / target - 1e-9);
  return Math.max(min, Math.min(max, needed));
}

/**
 * Since when a larger (or smaller) count has been wanted without a break; the move is due once
 * that has lasted `upMs` (or `downMs`). Wanting the current count, or the other direction, starts
 * the wait over. Time is passed in (ms), so a fake clock drives it in tests.
 */
export class ScaleHysteresis {
  #upSince: number | null = null;
  #downSince: number | null = null;

  constructor(
    public upMs: number,
    public downMs: number,
  ) {}

  /** Since when the current direction has been wanted (null: none). */
  get since(): number | null {
    return this.#upSince ?? this.#downSince;
  }

  /**
   * Records that `wanted` is wanted at `now` while `current` runs; returns the count to move to
   * when the move is due (then the wait starts over), else undefined.
   */
  next(now: number, current: number, wanted: number): number | undefined {
    if (wanted > current) {
      this.#downSince = null;
      this.#upSince ??= now;
      if (now - this.#upSince < this.upMs) return undefined;
    } else if (wanted < current) {
      this.#upSince = null;
      this.#downSince ??= now;
      if (now - this.#downSince < this.downMs) return undefined;
    } else {
      this.reset();
      return undefined;
    }
    this.reset();
    return wanted;
  }

  reset(): void {
    this.#upSince = null;
    this.#downSince = null;
  }
}
