/**
 * A push stream a handler can return (or fill from another thread of control): values sent are
 * delivered in order; `error()` delivers the error after the values sent before it.
 *
 * @example
 * ```ts
 * app.capability({ type: "tokens" }, (req, ctx) => {
 *   const s = new Stream();
 *   (async () => { for (const t of ["a", "b"]) s.send(t); s.close(); })();
 *   return s;
 * }, { stream: true });
 * ```
 */
import { AnyServeError } from "../errors.js";

export class Stream<T = unknown> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #closed = false;
  #error: AnyServeError | undefined;
  #wake: (() => void) | undefined;

  get closed(): boolean {
    return this.#closed;
  }

  /** The error recorded by {@link error}, if any. */
  get failure(): AnyServeError | undefined {
    return this.#error;
  }

  send(item: T): void {
    if (this.#closed) throw new AnyServeError("INTERNAL", "cannot send on a closed stream");
    this.#items.push(item);
    this.#notify();
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
    for (;;) {
      while (this.#items.length > 0) yield this.#items.shift()!;
      if (this.#closed) {
        if (this.#error) throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
