/**
 * Where producers wait for room: every {@link Gate.wait} until the next {@link Gate.open} gets the
 * same promise, and opening settles it for all of them. A stream's window (frame server, worker
 * runtime) and a buffer (the direct client) use it: a producer may be told to wait again before
 * the previous wait settled (chunks keep arriving from a hop that has its own window), and each
 * of those waits must settle, or what it holds back is never granted again.
 *
 * @example
 * ```ts
 * const room = new Gate();
 * const full = room.wait(); // the producer awaits this
 * room.open();              // settles every wait since the last open
 * ```
 */
export class Gate {
  #promise: Promise<void> | undefined;
  #open: (() => void) | undefined;

  /** True while someone waits. */
  get waiting(): boolean {
    return this.#promise !== undefined;
  }

  /** A promise that settles at the next {@link open}. */
  wait(): Promise<void> {
    if (this.#promise === undefined) {
      this.#promise = new Promise<void>((resolve) => {
        this.#open = resolve;
      });
    }
    return this.#promise;
  }

  /** Settles every wait so far. */
  open(): void {
    const open = this.#open;
    this.#promise = this.#open = undefined;
    open?.();
  }
}
