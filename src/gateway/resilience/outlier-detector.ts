/**
 * Outlier detection: takes a replica that keeps failing out of rotation for a while, so the
 * gateway stops sending it traffic it would only fail (and stops spending retries on it), then
 * lets it back in automatically. Repeat offenders are ejected for longer.
 *
 * Modelled on Envoy's outlier detection (consecutive-5xx detector); the defaults are Envoy's:
 * `consecutive_5xx = 5` (`consecutiveFailures`), `base_ejection_time = 30s` (`baseEjectionMs`),
 * `max_ejection_time = 300s` (`maxEjectionMs`), `max_ejection_percent = 10`
 * (`maxEjectionPercent`, with at least one replica always ejectable, as Envoy does).
 *
 * The n-th ejection lasts `min(baseEjectionMs * n, maxEjectionMs)`. A replica is never ejected
 * when that would leave none of its peers (the replicas that could serve the same request)
 * available. Re-admission is lazy (checked when asked), so there are no timers; time comes only
 * from the injected `now`. `onSuccess` and `isEjected` are a Map lookup at most.
 */

/** Options of {@link OutlierDetector}; every field is optional. */
export interface OutlierDetectorOptions {
  /** Consecutive failures that eject a replica (Envoy `consecutive_5xx`). Default 5. */
  consecutiveFailures?: number;
  /** Length of the first ejection; the n-th lasts n times this (Envoy `base_ejection_time`). Default 30 000. */
  baseEjectionMs?: number;
  /** Cap on an ejection's length, and the quiet time after which the multiplier resets (Envoy `max_ejection_time`). Default 300 000. */
  maxEjectionMs?: number;
  /** Most peers that may be ejected at once, in percent; at least 1 always may (Envoy `max_ejection_percent`). Default 10. */
  maxEjectionPercent?: number;
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number;
}

/** One replica's outlier state, for the status API. */
export interface OutlierSnapshot {
  consecutive_failures: number;
  /** When the current ejection ends (ms, same clock as `now`), or null when not ejected. */
  ejected_until: number | null;
  times_ejected: number;
}

interface Entry {
  consecutive: number;
  ejected: boolean;
  /** End of the current ejection, or of the last one once re-admitted. */
  ejectedUntil: number;
  timesEjected: number;
}

/** Envoy-style consecutive-failure outlier ejection per replica. Pure, synchronous, clock-injectable. */
export class OutlierDetector {
  readonly #threshold: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #maxFraction: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** Ids currently ejected (may hold expired ones until they are next looked at). */
  readonly #ejected = new Set<string>();

  /** @throws RangeError when an option is out of range. */
  constructor(options: OutlierDetectorOptions = {}) {
    const { consecutiveFailures = 5, baseEjectionMs = 30_000, maxEjectionMs = 300_000, maxEjectionPercent = 10, now = Date.now } = options;
    if (!(consecutiveFailures >= 1)) throw new RangeError(`consecutiveFailures must be >= 1, got ${consecutiveFailures}`);
    if (!(baseEjectionMs > 0)) throw new RangeError(`baseEjectionMs must be > 0, got ${baseEjectionMs}`);
    if (!(maxEjectionMs >= baseEjectionMs)) throw new RangeError(`maxEjectionMs must be >= baseEjectionMs, got ${maxEjectionMs}`);
    if (!(maxEjectionPercent >= 0 && maxEjectionPercent <= 100)) {
      throw new RangeError(`maxEjectionPercent must be within 0..100, got ${maxEjectionPercent}`);
    }
    this.#threshold = consecutiveFailures;
    this.#baseMs = baseEjectionMs;
    this.#maxMs = maxEjectionMs;
    this.#maxFraction = maxEjectionPercent / 100;
    this.#now = now;
  }

  /** Resets the replica's consecutive-failure count. Creates no state for replicas that never failed. */
  onSuccess(id: string): void {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    e.consecutive = 0;
    // Nothing left worth remembering: drop the entry so healthy replicas cost no memory.
    if (e.timesEjected === 0 && !e.ejected) this.#entries.delete(id);
  }

  /**
   * Counts a failure of replica `id`. At the threshold, ejects it and returns true, unless that
   * would leave no non-ejected replica among `peers` (the replicas that could serve the same
   * request, `id` included) or more than `max(1, floor(maxEjectionPercent% × peers.length))` of
   * them ejected; then returns false and keeps counting, so a later failure ejects once allowed.
   * Failures reported while `id` is ejected (requests already in flight) are ignored.
   */
  onFailure(id: string, peers: readonly string[]): boolean {
    let e = this.#entries.get(id);
    if (e === undefined) {
      e = { consecutive: 0, ejected: false, ejectedUntil: 0, timesEjected: 0 };
      this.#entries.set(id, e);
    }
    const now = this.#now();
    if (e.ejected) {
      if (now < e.ejectedUntil) return false;
      this.#readmit(id, e);
    }
    this.#decay(e, now);
    if (++e.consecutive < this.#threshold) return false;

    // Threshold reached: may we eject? (Rare path; O(peers).)
    let others = 0; // peers other than `id` that are not ejected
    let ejectedPeers = 0;
    for (const p of peers) {
      if (p === id) continue;
      if (this.isEjected(p)) ejectedPeers++;
      else others++;
    }
    const limit = Math.max(1, Math.floor(this.#maxFraction * peers.length));
    if (others === 0 || ejectedPeers + 1 > limit) return false;

    e.timesEjected++;
    e.ejected = true;
    e.ejectedUntil = now + Math.min(this.#baseMs * e.timesEjected, this.#maxMs);
    this.#ejected.add(id);
    return true;
  }

  /**
   * True while the replica is ejected. Once its ejection has ended, re-admits it (clears the
   * ejection and the consecutive count, keeps `timesEjected`) and returns false.
   */
  isEjected(id: string): boolean {
    if (this.#ejected.size === 0) return false;
    const e = this.#entries.get(id);
    if (e === undefined || !e.ejected) return false;
    if (this.#now() < e.ejectedUntil) return true;
    this.#readmit(id, e);
    return false;
  }

  /** Replicas currently ejected (expired ejections are re-admitted first). 0 lets callers skip filtering. */
  get ejectedCount(): number {
    if (this.#ejected.size === 0) return 0;
    const now = this.#now();
    for (const id of this.#ejected) {
      const e = this.#entries.get(id);
      if (e === undefined) this.#ejected.delete(id);
      else if (now >= e.ejectedUntil) this.#readmit(id, e);
    }
    return this.#ejected.size;
  }

  /** Drops all state of a replica (it left the registry). */
  forget(id: string): void {
    this.#entries.delete(id);
    this.#ejected.delete(id);
  }

  /** The replica's outlier state, for the status API (zeros for an unknown replica). */
  snapshot(id: string): OutlierSnapshot {
    const e = this.#entries.get(id);
    if (e === undefined) return { consecutive_failures: 0, ejected_until: null, times_ejected: 0 };
    const now = this.#now();
    if (e.ejected && now >= e.ejectedUntil) this.#readmit(id, e);
    this.#decay(e, now);
    return {
      consecutive_failures: e.consecutive,
      ejected_until: e.ejected ? e.ejectedUntil : null,
      times_ejected: e.timesEjected,
    };
  }

  #readmit(id: string, e: Entry): void {
    e.ejected = false;
    e.consecutive = 0;
    this.#ejected.delete(id);
  }

  /** Resets the ejection multiplier once `maxEjectionMs` have passed since the last ejection ended. */
  #decay(e: Entry, now: number): void {
    if (e.timesEjected > 0 && !e.ejected && now - e.ejectedUntil >= this.#maxMs) e.timesEjected = 0;
  }
}
