/**
 * A worker process's requests to its replica that get one answer each (CALL → CALL_RESULT, FETCH
 * → FETCHED): ids in the worker's own space, the answer matched by id, an error meta rejected with
 * its catalogue code, and an abort that settles the request here at once (the replica's work goes
 * on, bound to the job's abort; its late answer finds no one waiting and is dropped).
 * replica-caller.ts and replica-objects.ts each keep one.
 */
import { errorOf, type Meta } from "./worker-protocol.js";

interface Pending {
  resolve: (answer: { meta: Meta; body: Buffer }) => void;
  reject: (err: unknown) => void;
}

export class ReplicaRequests {
  readonly #send: (type: number, id: number, meta: Meta, body: Buffer) => void;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  /** `send`: one message to the replica, now. */
  constructor(send: (type: number, id: number, meta: Meta, body: Buffer) => void) {
    this.#send = send;
  }

  /** A fresh id of this space (for requests answered otherwise, such as a CALL_STREAM). */
  nextId(): number {
    return this.#nextId++;
  }

  /** Requests still unanswered (leak checks). */
  get pending(): number {
    return this.#pending.size;
  }

  /** Sends `type` and resolves with its answer; `aborted` makes the error an abort rejects with. */
  ask(
    type: number,
    meta: Meta,
    body: Buffer,
    signal: AbortSignal | undefined,
    aborted: () => unknown,
  ): Promise<{ meta: Meta; body: Buffer }> {
    if (signal?.aborted) return Promise.reject(aborted());
    const id = this.nextId();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#pending.delete(id);
        reject(aborted());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const settled =
        <T>(f: (v: T) => void) =>
        (v: T): void => {
          signal?.removeEventListener("abort", onAbort);
          f(v);
        };
      this.#pending.set(id, { resolve: settled(resolve), reject: settled(reject) });
      this.#send(type, id, meta, body);
    });
  }

  /** The replica's answer to request `id`: an error meta rejects with its code. */
  answer(id: number, meta: Meta, body: Buffer): void {
    const p = this.#pending.get(id);
    if (p === undefined) return; // given up on (aborted)
    this.#pending.delete(id);
    const err = errorOf(meta);
    if (err) p.reject(err);
    else p.resolve({ meta, body });
  }
}
