/**
 * Circuit breakers per (replica, capability): when a replica keeps failing one capability (a
 * broken model, an exhausted GPU for one kind of work) while serving others fine, the gateway
 * stops routing that capability to it, probes it with a single trial request after a pause, and
 * resumes on success. Complements the per-replica outlier detector, which reacts to a replica
 * failing as a whole.
 *
 * Modelled on Moleculer's circuit breaker; the defaults are Moleculer's: `threshold = 0.5`
 * (`failureRatio`), `minRequestCount = 20` (`minRequests`), `windowTime = 60s` (`windowMs`),
 * `halfOpenTime = 10s` (`halfOpenMs`).
 *
 * States: `closed` (traffic flows; a sliding window of 10 buckets counts requests and failures,
 * and the circuit opens once it has seen `minRequests` with a failure ratio ≥ `failureRatio`),
 * `open` (no traffic until `halfOpenMs` have passed), `half_open` (one trial request is let
 * through; its success closes the circuit with a fresh window, its failure re-opens it).
 * Circuits live in nested Maps (replica → capability → circuit), so no key strings are built per
 * call; `openCount` lets the hot path skip `allows` entirely while every circuit is closed. No
 * timers: time comes only from the injected `now`.
 */

/** Number of buckets the sliding window is divided into. */
const BUCKETS = 10;

/** State of one circuit. */
export type CircuitState = "closed" | "open" | "half_open";

/** Options of {@link CircuitBreakers}; every field is optional. */
export interface CircuitBreakerOptions {
  /** Failure ratio in the window that opens a circuit (Moleculer `threshold`). Default 0.5. */
  failureRatio?: number;
  /** Requests the window must hold before the ratio is judged (Moleculer `minRequestCount`). Default 20. */
  minRequests?: number;
  /** Length of the sliding window in milliseconds (Moleculer `windowTime`). Default 60 000. */
  windowMs?: number;
  /** Time an open circuit waits before its trial request (Moleculer `halfOpenTime`). Default 10 000. */
  halfOpenMs?: number;
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number;
}

/** One circuit, for the status API. */
export interface CircuitSnapshot {
  capability: string;
  state: CircuitState;
  /** Requests counted in the current window. */
  requests: number;
  /** Failures counted in the current window. */
  failures: number;
  /** When the circuit last opened (ms, same clock as `now`), or null when closed. */
  opened_at: number | null;
}

interface Circuit {
  state: CircuitState;
  openedAt: number;
  /** When the outstanding half-open trial was let through. */
  trialAt: number;
  readonly requests: Uint32Array;
  readonly failures: Uint32Array;
  head: number;
  headIdx: number;
  totalRequests: number;
  totalFailures: number;
}

/** Moleculer-style circuit breakers keyed by (replica, capability). Pure, synchronous, clock-injectable. */
export class CircuitBreakers {
  readonly #ratio: number;
  readonly #minRequests: number;
  readonly #bucketMs: number;
  readonly #halfOpenMs: number;
  readonly #now: () => number;
  readonly #circuits = new Map<string, Map<string, Circuit>>();
  #open = 0;

  /** @throws RangeError when an option is out of range. */
  constructor(options: CircuitBreakerOptions = {}) {
    const { failureRatio = 0.5, minRequests = 20, windowMs = 60_000, halfOpenMs = 10_000, now = Date.now } = options;
    if (!(failureRatio > 0 && failureRatio <= 1)) throw new RangeError(`failureRatio must be within (0, 1], got ${failureRatio}`);
    if (!(minRequests >= 1)) throw new RangeError(`minRequests must be >= 1, got ${minRequests}`);
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
    if (!(halfOpenMs >= 0)) throw new RangeError(`halfOpenMs must be >= 0, got ${halfOpenMs}`);
    this.#ratio = failureRatio;
    this.#minRequests = minRequests;
    this.#bucketMs = windowMs / BUCKETS;
    this.#halfOpenMs = halfOpenMs;
    this.#now = now;
  }

  /**
   * Records the outcome of a request to `replicaId` for capability `capKey`.
   * Closed: counts it, and opens the circuit once the window holds ≥ `minRequests` requests with
   * failures/requests ≥ `failureRatio`. Half-open: it is the trial's result; success closes the
   * circuit with an empty window, failure re-opens it. Open: ignored (a request from before it opened).
   */
  record(replicaId: string, capKey: string, ok: boolean): void {
    let byCap = this.#circuits.get(replicaId);
    if (byCap === undefined) {
      byCap = new Map();
      this.#circuits.set(replicaId, byCap);
    }
    const now = this.#now();
    let c = byCap.get(capKey);
    if (c === undefined) {
      c = {
        state: "closed",
        openedAt: 0,
        trialAt: 0,
        requests: new Uint32Array(BUCKETS),
        failures: new Uint32Array(BUCKETS),
        head: 0,
        headIdx: Math.floor(now / this.#bucketMs),
        totalRequests: 0,
        totalFailures: 0,
      };
      byCap.set(capKey, c);
    }
    switch (c.state) {
      case "closed": {
        this.#advance(c, now);
        c.requests[c.head]!++;
        c.totalRequests++;
        if (!ok) {
          c.failures[c.head]!++;
          c.totalFailures++;
        }
        if (c.totalRequests >= this.#minRequests && c.totalFailures >= this.#ratio * c.totalRequests) {
          c.state = "open";
          c.openedAt = now;
          this.#open++;
        }
        return;
      }
      case "half_open": {
        if (ok) {
          c.state = "closed";
          this.#open--;
          c.requests.fill(0);
          c.failures.fill(0);
          c.totalRequests = 0;
          c.totalFailures = 0;
          c.headIdx = Math.floor(now / this.#bucketMs);
        } else {
          c.state = "open";
          c.openedAt = now;
        }
        return;
      }
      case "open":
        return;
    }
  }

  /**
   * Whether a request for `capKey` may go to `replicaId`. Closed: true. Open: false until
   * `halfOpenMs` have passed since it opened; then it turns half-open and returns true once, for
   * the single trial request. Half-open with the trial outstanding: false (should the trial never
   * be recorded, another one is let through after a further `halfOpenMs`, so a lost result cannot
   * keep the circuit half-open forever).
   */
  allows(replicaId: string, capKey: string): boolean {
    if (this.#open === 0) return true;
    const c = this.#circuits.get(replicaId)?.get(capKey);
    if (c === undefined) return true;
    switch (c.state) {
      case "closed":
        return true;
      case "open": {
        const now = this.#now();
        if (now - c.openedAt < this.#halfOpenMs) return false;
        c.state = "half_open";
        c.trialAt = now;
        return true;
      }
      case "half_open": {
        const now = this.#now();
        if (now - c.trialAt < this.#halfOpenMs) return false;
        c.trialAt = now;
        return true;
      }
    }
  }

  /**
   * Whether {@link allows} would refuse right now, without taking the half-open trial: lets the
   * gateway filter candidates first and take the trial only for the replica it picks.
   */
  blocks(replicaId: string, capKey: string): boolean {
    if (this.#open === 0) return false;
    const c = this.#circuits.get(replicaId)?.get(capKey);
    if (c === undefined || c.state === "closed") return false;
    const since = c.state === "open" ? c.openedAt : c.trialAt;
    return this.#now() - since < this.#halfOpenMs;
  }

  /** Circuits currently open or half-open. 0 lets the hot path skip {@link allows}. */
  get openCount(): number {
    return this.#open;
  }

  /** Drops every circuit of a replica (it left the registry). */
  forget(replicaId: string): void {
    const byCap = this.#circuits.get(replicaId);
    if (byCap === undefined) return;
    for (const c of byCap.values()) if (c.state !== "closed") this.#open--;
    this.#circuits.delete(replicaId);
  }

  /** The replica's circuits, one per capability it has served, for the status API. */
  snapshot(replicaId: string): CircuitSnapshot[] {
    const byCap = this.#circuits.get(replicaId);
    if (byCap === undefined) return [];
    const now = this.#now();
    const out: CircuitSnapshot[] = [];
    for (const [capability, c] of byCap) {
      if (c.state === "closed") this.#advance(c, now);
      out.push({
        capability,
        state: c.state,
        requests: c.totalRequests,
        failures: c.totalFailures,
        opened_at: c.state === "closed" ? null : c.openedAt,
      });
    }
    return out;
  }

  /** Moves the circuit's ring head to the bucket of `now`, zeroing the buckets skipped over. */
  #advance(c: Circuit, now: number): void {
    const idx = Math.floor(now / this.#bucketMs);
    const steps = idx - c.headIdx;
    if (steps <= 0) return; // same bucket, or the clock went backwards: keep counting into the head
    if (steps >= BUCKETS) {
      c.requests.fill(0);
      c.failures.fill(0);
      c.totalRequests = 0;
      c.totalFailures = 0;
    } else {
      for (let k = 0; k < steps; k++) {
        const h = (c.head = (c.head + 1) % BUCKETS);
        c.totalRequests -= c.requests[h]!;
        c.totalFailures -= c.failures[h]!;
        c.requests[h] = 0;
        c.failures[h] = 0;
      }
    }
    c.headIdx = idx;
  }
}
