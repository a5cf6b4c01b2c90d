/**
 * Starts and stops reading a consumed socket. In consume mode llhttp reads the libuv handle
 * itself, so `socket.pause()` would not stop it: like node:http (`onSocketPause`), reading is
 * stopped on the handle. Several reasons may hold at once; reading resumes when none is left.
 */
import type { Socket } from "node:net";

/** The libuv stream under a net.Socket (what `parser.consume` reads from). */
export interface StreamHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

/**
 * Why reading is paused (bits): a full socket, too many pipelined requests, a relayed body waiting,
 * too many answer bytes held for the client.
 */
export const WRITE = 1;
export const QUEUE = 2;
export const UPLOAD = 4;
export const HELD = 8;

export class ReadGate {
  readonly handle: StreamHandle;
  readonly #socket: Socket;
  #paused = 0;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.handle = (socket as unknown as { _handle: StreamHandle })._handle;
  }

  isPaused(why: number): boolean {
    return (this.#paused & why) !== 0;
  }

  pause(why: number): void {
    if (this.#paused === 0 && this.handle.reading) {
      this.handle.reading = false;
      this.handle.readStop();
    }
    this.#paused |= why;
  }

  resume(why: number): void {
    if ((this.#paused & why) === 0) return;
    this.#paused &= ~why;
    if (this.#paused === 0) this.#start();
  }

  /** Reads again whatever the reasons (a closing connection drains its input). */
  open(): void {
    this.#paused = 0;
    this.#start();
  }

  #start(): void {
    if (!this.handle.reading && !this.#socket.destroyed) {
      this.handle.reading = true;
      this.handle.readStart();
    }
  }
}
