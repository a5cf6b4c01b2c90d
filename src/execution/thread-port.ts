/**
 * Both ends of a worker-thread message channel: messages of one event-loop turn go out as one
 * `postMessage` (an array of `[type, id, metaJson, body]`; meta travels as JSON text, which
 * clones faster than an object graph and is what process workers get too), and bodies move by
 * transfer. Each
 * `postMessage` costs a wake-up of the other thread, so fewer, fuller batches keep the hop cheap
 * under load (a burst of answers becomes one message, and so do the jobs sent in reply).
 *
 * Transfer rule: a Buffer of at least {@link TRANSFER_MIN_BYTES} that owns its whole ArrayBuffer
 * is transferred (no copy; the sender's Buffer is detached afterwards). Any other Buffer — a small
 * one, a view into Node's 8 KiB pool or into a socket chunk — is copied into an exactly sized
 * ArrayBuffer first, which is then transferred: structured-cloning the view would copy its *whole*
 * backing store (the pool, the chunk). Small bodies are copied on purpose: a job whose body moved
 * can only go to an idle worker (it cannot be re-sent if that worker dies), which costs a round
 * trip of idle time per job; copying a few KiB costs far less than that and keeps the pipeline.
 */
import type { Meta } from "./worker-protocol.js";

type Wire = [type: number, id: number, meta: string | null, body: Uint8Array | null];

export interface PortLike {
  postMessage(value: unknown, transferList?: readonly ArrayBuffer[]): void;
}

/** Bodies from this size on move by transfer when they can; smaller ones are copied. */
export const TRANSFER_MIN_BYTES = 64 * 1024;

/** True when sending `buf` transfers it (and detaches it here). */
export function movesOnSend(buf: Buffer): boolean {
  return (
    buf.length >= TRANSFER_MIN_BYTES &&
    buf.byteOffset === 0 &&
    buf.byteLength === buf.buffer.byteLength &&
    buf.buffer instanceof ArrayBuffer
  );
}

/** Where messages wait to be sent together; `flush` sends them now. */
export interface Outbox {
  send(type: number, id: number, meta: Meta, body?: Buffer): void;
  flush(): void;
  /** performance.now() of the oldest message not yet sent (Infinity when none). */
  readonly waitingSince: number;
}

/** Runs `fn` at the end of this event-loop turn (after the I/O callbacks of the turn). */
export function endOfTurn(fn: () => void): void {
  setImmediate(fn);
}

export class ThreadOutbox implements Outbox {
  readonly #port: PortLike;
  #batch: Wire[] = [];
  #transfer: ArrayBuffer[] = [];
  #scheduled = false;
  #since = Infinity;

  constructor(port: PortLike) {
    this.#port = port;
  }

  send(type: number, id: number, meta: Meta, body?: Buffer): void {
    let view: Uint8Array | null = null;
    if (body && body.length > 0) {
      view = movesOnSend(body) ? body : new Uint8Array(body);
      this.#transfer.push(view.buffer as ArrayBuffer);
    }
    if (this.#batch.length === 0) this.#since = performance.now();
    this.#batch.push([type, id, meta === null ? null : JSON.stringify(meta), view]);
    if (!this.#scheduled) {
      this.#scheduled = true;
      endOfTurn(() => this.flush());
    }
  }

  get waitingSince(): number {
    return this.#since;
  }

  flush(): void {
    this.#scheduled = false;
    this.#since = Infinity;
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    const transfer = this.#transfer;
    this.#batch = [];
    this.#transfer = [];
    this.#port.postMessage(batch, transfer);
  }
}

/** Unpacks one posted batch; bodies become Buffers over the transferred memory (no copy). */
export function unpack(value: unknown, deliver: (type: number, id: number, meta: Meta, body: Buffer) => void): void {
  if (!Array.isArray(value)) return;
  for (const m of value as Wire[]) {
    const b = m[3];
    deliver(m[0], m[1], m[2] === null ? null : (JSON.parse(m[2]) as Meta), b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : EMPTY);
  }
}

const EMPTY = Buffer.alloc(0);
