/**
 * One connection's answers, in request order. HTTP/1.1 lets a client pipeline requests; they may
 * be served concurrently, but their answers must leave in the order the requests came. Each request
 * gets a {@link Slot} when its headers arrive; whoever answers it fills the slot; the outbox writes
 * the front slots that are ready and stops at the first that is not.
 */
import type { Socket } from "node:net";
import type { Cancellation } from "../../util/cancel.js";
import { writeAnswer } from "./response.js";

export class Slot {
  /** Bytes that go before the final answer: `100 Continue`, the pieces of a relayed answer. */
  parts: (string | Buffer)[] | undefined = undefined;
  /** Bytes in `parts` (a relay that is not at the front yet stops reading past a limit). */
  partBytes = 0;
  /** The final answer: head (latin1) and body. */
  head: string | undefined = undefined;
  body: Buffer | undefined = undefined;
  /** Nothing more comes for this slot. */
  ended = false;
  /** The connection closes once this slot is written. */
  close = false;
  /** Told when the slot reaches the front (a relay waiting to stream resumes). */
  onFront: (() => void) | undefined = undefined;
  /** The signal of the call answering this slot, fired if the client leaves first. */
  cancel: Cancellation | undefined = undefined;

  /** Queues bytes before the final answer. */
  push(part: string | Buffer): void {
    (this.parts ??= []).push(part);
    this.partBytes += part.length;
  }
}

/** What the outbox tells its connection. */
export interface OutboxOwner {
  /** Something was written; `empty` when no slot is left, `closed` when a closing slot went out. */
  afterFlush(empty: boolean, closed: boolean): void;
  /** An answer is ready but waits behind an earlier one: `held` bytes of answers wait so. */
  afterHold(held: number): void;
}

export class Outbox {
  readonly #socket: Socket;
  readonly #owner: OutboxOwner;
  readonly #queue: Slot[] = [];
  #closed = false;
  /** Bytes of answers that are ready but wait behind an earlier slot. */
  #held = 0;

  constructor(socket: Socket, owner: OutboxOwner) {
    this.#socket = socket;
    this.#owner = owner;
  }

  get length(): number {
    return this.#queue.length;
  }

  /** Bytes of finished answers waiting behind an earlier, unfinished one. */
  get held(): number {
    return this.#held;
  }

  /** A closing slot was written: nothing else may be. */
  get closed(): boolean {
    return this.#closed;
  }

  isFront(slot: Slot): boolean {
    return this.#queue[0] === slot;
  }

  /** Takes the next request's slot. */
  add(slot: Slot): void {
    this.#queue.push(slot);
  }

  /** Gives a slot its final answer and writes whatever can go. */
  finish(slot: Slot, head: string, body: Buffer | undefined, close: boolean): void {
    slot.head = head;
    slot.body = body;
    if (close) slot.close = true;
    slot.ended = true;
    if (this.#queue[0] === slot) this.flush();
    else {
      this.#held += sizeOf(slot);
      this.#owner.afterHold(this.#held);
    }
  }

  /**
   * Writes the ready front slots. Several answers ready at once (pipelined requests answered in
   * one turn) are corked into one write.
   */
  flush(): void {
    const q = this.#queue;
    const socket = this.#socket;
    if (this.#closed || socket.destroyed) return;
    let corked = false;
    let wrote = false;
    const first = q[0];
    while (q.length > 0) {
      const s = q[0]!;
      if (s.parts !== undefined) {
        if (!corked) {
          socket.cork();
          corked = true;
        }
        for (const p of s.parts) socket.write(p, "latin1");
        s.parts = undefined;
        s.partBytes = 0;
        wrote = true;
      }
      if (!s.ended) break;
      if (s.head !== undefined) {
        if (!corked && q.length > 1) {
          socket.cork();
          corked = true;
        }
        if (s !== first) this.#held -= sizeOf(s);
        writeAnswer(socket, s.head, s.body);
        s.body = undefined;
        wrote = true;
      }
      q.shift();
      if (s.close) {
        this.#closed = true;
        this.#held = 0;
        for (const rest of q) rest.onFront = undefined;
        q.length = 0;
        break;
      }
      q[0]?.onFront?.();
    }
    if (corked) socket.uncork();
    if (wrote || this.#closed) this.#owner.afterFlush(q.length === 0, this.#closed);
  }

  /** Makes the last queued slot close the connection (shutdown, or the client ended its side). */
  closeAfterLast(): void {
    const last = this.#queue[this.#queue.length - 1];
    if (last !== undefined) last.close = true;
  }

  /** The client is gone: the calls of every queued slot are cancelled, and the queue dropped. */
  cancelAll(reason: unknown): void {
    this.#held = 0;
    const q = this.#queue.splice(0);
    for (const s of q) {
      s.onFront = undefined;
      s.cancel?.abort(reason);
    }
  }
}

/** An ended slot's answer bytes. */
function sizeOf(slot: Slot): number {
  return (slot.head?.length ?? 0) + (slot.body?.length ?? 0);
}
