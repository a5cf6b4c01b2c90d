/**
 * Retry budget: caps the retries the gateway may issue to a fraction of the original requests,
 * so that failover retries cannot multiply the load on replicas during an outage (a 2-attempt
 * retry policy would otherwise triple traffic exactly when the backends are least able to take it).
 *
 * Modelled on Finagle's `RetryBudget`; the defaults are Finagle's: `percentCanRetry = 0.2`
 * (`ratio`), `minRetriesPerSec = 10` (`minPerSecond`) and `ttl = 10 seconds` (`windowMs`).
 *
 * Within the sliding window a retry is granted while, after granting it, the retries would still
 * not exceed `ratio * requests + minPerSecond * windowMs / 1000`. The window slides in 10 buckets
 * (a ring of counters indexed by `floor(now / (windowMs / 10))`, stale buckets zeroed lazily when
 * the clock has moved on), so every call is O(1), allocation-free and timer-free; time comes only
 * from the injected `now`.
 */

/** Number of buckets the sliding window is divided into. */
const BUCKETS = 10;
/** Tolerance for floating-point error in `ratio * requests` (e.g. 0.2 * 15 = 2.9999…). */
const EPSILON = 1e-9;

/** Options of {@link RetryBudget}; every field is optional. */
export interface RetryBudgetOptions {
  /** Retries allowed per original request in the window (Finagle `percentCanRetry`). Default 0.2. */
  ratio?: number;
  /** Retries allowed per second regardless of traffic (Finagle `minRetriesPerSec`). Default 10. */
  minPerSecond?: number;
  /** Length of the sliding window in milliseconds (Finagle `ttl`). Default 10 000. */
  windowMs?: number;
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number;
}

/** Counters reported on the status API. */
export interface RetryBudgetSnapshot {
  /** Original requests counted in the current window. */
  requests: number;
  /** Retries granted in the current window. */
  retries: number;
  /** Total retries the current window admits (`floor(ratio * requests + minPerSecond * windowSec)`). */
  allowed: number;
}

/** A Finagle-style retry budget over a 10-bucket sliding window. Pure, synchronous, clock-injectable. */
export class RetryBudget {
  readonly #ratio: number;
  readonly #floor: number;
  readonly #bucketMs: number;
  readonly #now: () => number;
  readonly #requests = new Float64Array(BUCKETS);
  readonly #retries = new Float64Array(BUCKETS);
  #head = 0;
  #headIdx: number;
  #totalRequests = 0;
  #totalRetries = 0;

  /** @throws RangeError when an option is negative, or `windowMs` is not positive. */
  constructor(options: RetryBudgetOptions = {}) {
    const { ratio = 0.2, minPerSecond = 10, windowMs = 10_000, now = Date.now } = options;
    if (!(ratio >= 0)) throw new RangeError(`retry budget ratio must be >= 0, got ${ratio}`);
    if (!(minPerSecond >= 0)) throw new RangeError(`retry budget minPerSecond must be >= 0, got ${minPerSecond}`);
    if (!(windowMs > 0)) throw new RangeError(`retry budget windowMs must be > 0, got ${windowMs}`);
    this.#ratio = ratio;
    this.#floor = (minPerSecond * windowMs) / 1000;
    this.#bucketMs = windowMs / BUCKETS;
    this.#now = now;
    this.#headIdx = Math.floor(now() / this.#bucketMs);
  }

  /** Counts one original (non-retry) request into the current bucket. */
  recordRequest(): void {
    this.#advance();
    this.#requests[this.#head]!++;
    this.#totalRequests++;
  }

  /**
   * Asks to retry a failed request. Returns true and counts the retry when the window still has
   * room for it, false (and counts nothing) when the budget is spent.
   */
  tryRetry(): boolean {
    this.#advance();
    if (this.#totalRetries + 1 > this.#cap() + EPSILON) return false;
    this.#retries[this.#head]!++;
    this.#totalRetries++;
    return true;
  }

  /** The current window's counters, for the status API. */
  snapshot(): RetryBudgetSnapshot {
    this.#advance();
    return {
      requests: this.#totalRequests,
      retries: this.#totalRetries,
      allowed: Math.floor(this.#cap() + EPSILON),
    };
  }

  #cap(): number {
    return this.#ratio * this.#totalRequests + this.#floor;
  }

  /** Moves the ring head to the bucket of `now`, zeroing the buckets skipped over. */
  #advance(): void {
    const idx = Math.floor(this.#now() / this.#bucketMs);
    const steps = idx - this.#headIdx;
    if (steps <= 0) return; // same bucket, or the clock went backwards: keep counting into the head
    if (steps >= BUCKETS) {
      this.#requests.fill(0);
      this.#retries.fill(0);
      this.#totalRequests = 0;
      this.#totalRetries = 0;
    } else {
      for (let k = 0; k < steps; k++) {
        const h = (this.#head = (this.#head + 1) % BUCKETS);
        this.#totalRequests -= this.#requests[h]!;
        this.#totalRetries -= this.#retries[h]!;
        this.#requests[h] = 0;
        this.#retries[h] = 0;
      }
    }
    this.#headIdx = idx;
  }
}
