/**
 * One service's autoscaler, Ray Serve's model: every `metrics_interval_s` the controller hands it
 * the requests ongoing (running or queued) at the service's replicas as they reported them, plus
 * those waiting at the API server for a replica to start; it averages them over
 * `look_back_period_s` and wants `ceil(average / target_ongoing_requests)` replicas within
 * `[min_replicas, max_replicas]` and what the node can hold (placement's {@link Headroom}, which
 * says what stopped it). A change is made once it has been wanted for `upscale_delay_s` (up) or
 * `downscale_delay_s` (down) without a break (`util/scaling.ts`), so load wobbling around a boundary
 * does not flap. Zero traffic wants `min_replicas`: never growth. No samples yet (replicas that
 * have not reported): no decision at all — never a jump on missing data.
 *
 * Scaling from zero does not wait for a delay: a request waiting at the API server for a service
 * with no replica starts one at once ({@link ServiceAutoscaler.wake}); the delays govern the rest.
 *
 * Pure apart from its own state: time comes in as an argument, so a fake clock drives it in tests.
 * The controller (`controller.ts`) samples, applies the decisions as replica counts and shows
 * the view in the status (`AutoscalingView`, gateway/status.ts).
 */
import type { AutoscalingConfig } from "../config/schema.js";
import { ScaleHysteresis, unitsFor } from "../util/scaling.js";
import type { AutoscalingView, ScalingDecision } from "../gateway/status.js";
import type { Headroom } from "./placement.js";

/** Why the count changed; the `reason` label of the metrics. */
export type DecisionReason = "load_above_target" | "load_below_target" | "request_while_cold" | "bounds";

export interface Decision extends ScalingDecision {
  reason: DecisionReason;
}

/** Decisions kept per service for the status. */
export const DECISIONS_KEPT = 10;

export class ServiceAutoscaler {
  #cfg: AutoscalingConfig;
  #max: number;
  readonly #hysteresis: ScaleHysteresis;
  #samples: { at: number; ongoing: number }[] = [];
  readonly #decisions: Decision[] = [];
  readonly #totals: Record<string, number> = {};
  #wanted: number | null = null;
  #capped: number | null = null;
  #limitedBy: string | null = null;

  constructor(cfg: AutoscalingConfig, max: number) {
    this.#cfg = cfg;
    this.#max = max;
    this.#hysteresis = new ScaleHysteresis(cfg.upscale_delay_s * 1000, cfg.downscale_delay_s * 1000);
  }

  get config(): AutoscalingConfig {
    return this.#cfg;
  }

  get min(): number {
    return this.#cfg.min_replicas;
  }

  get max(): number {
    return this.#max;
  }

  get decisions(): readonly Decision[] {
    return this.#decisions;
  }

  /** A changed config (`apply`): new bounds, target and delays; the samples and a wait under way are kept. */
  configure(cfg: AutoscalingConfig, max: number): void {
    this.#cfg = cfg;
    this.#max = max;
    this.#hysteresis.upMs = cfg.upscale_delay_s * 1000;
    this.#hysteresis.downMs = cfg.downscale_delay_s * 1000;
  }

  /** One sample: requests ongoing across the service at `now` (ms). */
  observe(now: number, ongoing: number): void {
    this.#samples.push({ at: now, ongoing });
    const from = now - this.#cfg.look_back_period_s * 1000;
    // The latest sample always stays, however short the window.
    while (this.#samples.length > 1 && this.#samples[0]!.at <= from) this.#samples.shift();
  }

  /** The average over the look-back window; null before any sample. */
  average(): number | null {
    if (this.#samples.length === 0) return null;
    return this.#samples.reduce((a, s) => a + s.ongoing, 0) / this.#samples.length;
  }

  /**
   * The decision at `now` for a service running towards `current` replicas, with room for
   * `room.max` on the node; undefined: keep `current`.
   */
  decide(now: number, current: number, room: Headroom): Decision | undefined {
    const avg = this.average();
    if (avg === null) return undefined;
    const { min_replicas: min, target_ongoing_requests: target } = this.#cfg;
    const wanted = unitsFor(avg, target, min, this.#max);
    const capped = Math.max(min, Math.min(wanted, room.max));
    this.#wanted = wanted;
    this.#capped = capped;
    this.#limitedBy =
      capped < wanted
        ? (room.limitedBy ?? "the node's capacity")
        : unitsFor(avg, target, min, Number.POSITIVE_INFINITY) > this.#max
          ? `max_replicas ${this.#max}`
          : null;
    const seen = `${round(avg)} request(s) ongoing on average over ${this.#cfg.look_back_period_s} s (target ${target} per replica) want ${wanted}${this.#limitedBy ? `, capped by ${this.#limitedBy}` : ""}`;
    // From zero at once: a replica is the only way the waiting requests get served.
    if (current === 0 && capped > 0) {
      this.#hysteresis.reset();
      return this.#record({ at: now, from: 0, to: capped, reason: "request_while_cold", detail: seen });
    }
    const to = this.#hysteresis.next(now, current, capped);
    if (to === undefined) return undefined;
    const up = to > current;
    const delay = up ? this.#cfg.upscale_delay_s : this.#cfg.downscale_delay_s;
    return this.#record({
      at: now,
      from: current,
      to,
      reason: up ? "load_above_target" : "load_below_target",
      detail: `${seen}, for ${delay} s`,
    });
  }

  /** A request waits at the API server while the service runs no replica: one starts now. */
  wake(now: number, current: number, waiting: number): Decision | undefined {
    if (current > 0 || this.#max === 0) return undefined;
    this.#hysteresis.reset();
    return this.#record({
      at: now,
      from: 0,
      to: 1,
      reason: "request_while_cold",
      detail: `${waiting} request(s) waiting at the API server for a replica`,
    });
  }

  /** The count `current` brought within changed bounds (`apply`), or undefined when it is within them. */
  clamp(now: number, current: number, room: Headroom): Decision | undefined {
    const to = Math.max(this.min, Math.min(current, this.#max, Math.max(room.max, this.min)));
    if (to === current) return undefined;
    this.#hysteresis.reset();
    return this.#record({
      at: now,
      from: current,
      to,
      reason: "bounds",
      detail: `min_replicas ${this.min}, max_replicas ${this.#max}${room.max < current ? `, ${room.limitedBy ?? "the node's capacity"}` : ""}`,
    });
  }

  /** What the status shows (the controller adds the replicas serving and the cold starts). */
  view(desired: number, now: number): Omit<AutoscalingView, "running" | "cold_starts"> {
    const since = this.#hysteresis.since;
    let pending: string | null = null;
    if (since !== null && this.#capped !== null && this.#capped !== desired) {
      const up = this.#capped > desired;
      const left = Math.max(0, (up ? this.#hysteresis.upMs : this.#hysteresis.downMs) - (now - since)) / 1000;
      pending = `${up ? "up" : "down"} to ${this.#capped} in ${round(left)} s if the load holds`;
    }
    const avg = this.average();
    return {
      min_replicas: this.min,
      max_replicas: this.#max,
      target_ongoing_requests: this.#cfg.target_ongoing_requests,
      desired,
      ongoing: avg === null ? null : round(avg),
      wanted: this.#wanted,
      limited_by: this.#limitedBy,
      pending,
      decisions: [...this.#decisions],
      decisions_total: { ...this.#totals },
    };
  }

  #record(d: Decision): Decision {
    this.#totals[d.reason] = (this.#totals[d.reason] ?? 0) + 1;
    this.#decisions.push(d);
    if (this.#decisions.length > DECISIONS_KEPT) this.#decisions.shift();
    return d;
  }
}

const round = (n: number): number => Math.round(n * 100) / 100;
