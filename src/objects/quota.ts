/**
 * The store's total-size cap. Usage is measured by scanning the backend at most once a second
 * (the directory may be shared with other processes, so writes elsewhere in the last second may
 * be missed: the cap can be overshot by about that much). Between scans, this process's own
 * writes and removals adjust the figure; an over-estimate only makes `room` rescan before it
 * would refuse.
 */
import { AnyServeError } from "../errors.js";
import type { ObjectBackend } from "./backends/base.js";

export class Quota {
  #bytes = 0;
  #at = 0;

  constructor(
    readonly backend: ObjectBackend,
    readonly maxBytes: number,
  ) {}

  /** Bytes left for a write of `needed` bytes (0 when unknown); `sweep` runs once before giving up with 507. */
  async room(needed: number, sweep: () => Promise<unknown>): Promise<number> {
    let left = this.maxBytes - (await this.#used(false));
    if (left < needed || left <= 0) {
      await sweep();
      left = this.maxBytes - (await this.#used(true));
    }
    if (left < needed || left <= 0) {
      throw new AnyServeError(
        "OBJECT_STORE_FULL",
        `object store ${this.backend.location} is full: ${needed} bytes needed, ${Math.max(0, left)} left under its ${this.maxBytes}-byte cap`,
      );
    }
    return left;
  }

  added(bytes: number): void {
    this.#bytes += bytes;
  }

  removed(bytes: number): void {
    this.#bytes -= bytes;
  }

  async #used(force: boolean): Promise<number> {
    if (force || Date.now() - this.#at > 1_000) {
      this.#bytes = await this.backend.usage();
      this.#at = Date.now();
    }
    return this.#bytes;
  }
}
