/**
 * A push stream a handler can return (or fill from another thread of control): values sent are
 * delivered in order; `error()` delivers the error after the values sent before it.
 *
 * Back-pressure: `send` returns a promise that settles once the stream holds fewer than
 * `highWaterMark` unread items (at once while it does). A producer that awaits it produces no
 * faster than the client reads: the consumer pulls an item only when the hop to the client has
 * room (runStreamTask), so a client that stops reading stops the producer after a bounded number
 * of items. A producer that ignores the promise still works, but buffers without bound here.
 * When the consumer leaves (the call was cancelled or cut), waiting sends settle and later ones
 * are dropped: check `ctx.signal` to stop producing.
 *
 * @example
 * ```ts
 * app.capability({ type: "tokens" }, (req, ctx) => {
 *   const s = new Stream<string>();
 *   (async () => {
 *     for (const t of ["a", "b"]) await s.send(t); // waits while the client is not reading
 *     s.close();
 *   })();
 *   return s;
 * }, { stream: true });
 * ```
 */
import { AnyServeError } from "../errors.js";

/** Unread items a {@link Stream} holds before `send` makes its producer wait. */
export const STREAM_HIGH_WATER_MARK = 16;

export class Stream<T = unknown> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  readonly #highWaterMark: number;
  #closed = false;
  /** The consumer stopped reading (the call ended): sends are dropped. */
  #abandoned = false;
  #error: AnyServeError | undefined;
  #wake: (() => void) | undefined;
  /** Producers waiting in `send` for room. */
  #waiting: (() => void)[] = [];

  /** `highWaterMark`: unread items held before `send` waits (default {@link STREAM_HIGH_WATER_MARK}). */
  constructor(options: { highWaterMark?: number } = {}) {
    this.#highWaterMark = Math.max(1, options.highWaterMark ?? STREAM_HIGH_WATER_MARK);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The error recorded by {@link error}, if any. */
  get failure(): AnyServeError | undefined {
    return this.#error;
  }

  /** Unread items. */
  get buffered(): number {
    return this.#items.length;
  }

  /** Queues `item`; the promise settles once there is room for more (see the class's note on back-pressure). */
  send(item: T): Promise<void> {
    if (this.#closed) throw new AnyServeError("INTERNAL", "cannot send on a closed stream");
    if (this.#abandoned) return Promise.resolve();
    this.#items.push(item);
    this.#notify();
    if (this.#items.length < this.#highWaterMark) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#notify();
  }

  /** Records an error and closes; consumers get it after the items sent before it. */
  error(message: string | Error): void {
    this.#error = AnyServeError.from(message instanceof Error ? message : new Error(message));
    this.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      for (;;) {
        while (this.#items.length > 0) {
          const item = this.#items.shift()!;
          this.#makeRoom();
          yield item;
        }
        if (this.#closed) {
          if (this.#error) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      // The consumer is done (or gone): nothing will read what is left.
      this.#abandoned = true;
      this.#items.length = 0;
      this.#makeRoom();
    }
  }

  /** Lets waiting producers go on while there is room (or everything, once abandoned). */
  #makeRoom(): void {
    while (this.#waiting.length > 0 && (this.#abandoned || this.#items.length < this.#highWaterMark)) this.#waiting.shift()!();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
