/**
 * How many bytes of request bodies a server holds at once, over all its requests: each request is
 * bounded by its body limit, but thousands of connections each sending a body just under it would
 * still add up to more memory than the machine has. Envoy's overload manager and nginx's body
 * buffers answer the same question. Past the budget a request is refused with 503
 * `SERVER_OVERLOADED` (retryable, Retry-After) instead of being read: its client backs off and
 * tries again once requests in flight have finished and given their bytes back.
 *
 * A request holds its body's bytes from the moment they are read (its declared Content-Length at
 * once, a chunked body as it arrives) until its answer is done — the body stays referenced while
 * the gateway forwards it and may retry it on another replica.
 *
 * @example
 * ```ts
 * const budget = new BodyBudget(1 << 30);
 * const hold = budget.hold();
 * if (!hold.take(contentLength)) throw budget.overloaded(contentLength);
 * res.once("close", () => hold.release());
 * ```
 */
import { AnyServeError } from "../errors.js";

export class BodyBudget {
  readonly limit: number;
  /** The setting that gave the limit, named in refusals. */
  readonly setting: string;
  #used = 0;

  /** `limit`: bytes of request bodies held at once, over every request; `setting`: where it was set. */
  constructor(limit: number, setting = "api_server.max_buffered_mb") {
    this.limit = limit;
    this.setting = setting;
  }

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** One request's share, given back once by {@link BodyHold.release}. */
  hold(): BodyHold {
    return new BodyHold(this);
  }

  /** Takes `n` bytes if they fit; false (and nothing taken) if they would pass the limit. */
  take(n: number): boolean {
    if (this.#used + n > this.limit) return false;
    this.#used += n;
    return true;
  }

  give(n: number): void {
    this.#used -= n;
  }

  /** The refusal of a request whose `more` bytes did not fit. */
  overloaded(more: number): AnyServeError {
    return new AnyServeError(
      "SERVER_OVERLOADED",
      `the server holds ${this.#used} bytes of request bodies, and ${more} more would pass its limit of ${this.limit} (${this.setting}): try again shortly`,
    );
  }
}

/** What one request took of a {@link BodyBudget}. */
export class BodyHold {
  readonly #budget: BodyBudget;
  #taken = 0;
  #released = false;

  constructor(budget: BodyBudget) {
    this.#budget = budget;
  }

  /** Takes `n` more bytes for this request; false when they do not fit (or it was released). */
  take(n: number): boolean {
    if (this.#released || !this.#budget.take(n)) return false;
    this.#taken += n;
    return true;
  }

  /** The refusal of `more` bytes that did not fit. */
  overloaded(more: number): AnyServeError {
    return this.#budget.overloaded(more);
  }

  /** Gives back everything taken; later calls do nothing. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#budget.give(this.#taken);
    this.#taken = 0;
  }
}
