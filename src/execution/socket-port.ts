/**
 * Frames over a stream socket for the `process` strategy, both ends: `transport/frames.ts`
 * encoding (u32 length · u8 version · u8 type · u32 id · u32 metaLength · JSON meta · body), with
 * the frames of one event-loop turn corked into one write.
 */
import type { Socket } from "node:net";
import { encodeFrame, FrameDecoder } from "../transport/frames.js";
import { endOfTurn, type Outbox } from "./thread-port.js";
import type { Meta } from "./worker-protocol.js";

export class SocketOutbox implements Outbox {
  readonly #socket: Socket;
  #corked = false;
  #since = Infinity;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  send(type: number, id: number, meta: Meta, body?: Buffer): void {
    if (this.#socket.destroyed) return;
    if (!this.#corked) {
      this.#corked = true;
      this.#since = performance.now();
      this.#socket.cork();
      endOfTurn(() => this.flush());
    }
    for (const part of encodeFrame(type, id, meta, body)) this.#socket.write(part);
  }

  get waitingSince(): number {
    return this.#since;
  }

  flush(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#since = Infinity;
    this.#socket.uncork();
  }
}

/** Feeds a socket's bytes to `deliver`, frame by frame; a malformed stream destroys the socket. */
export function readFrames(socket: Socket, deliver: (type: number, id: number, meta: Meta, body: Buffer) => void): void {
  const decoder = new FrameDecoder((type, id, meta, body) => deliver(type, id, meta, body));
  socket.on("data", (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (err) {
      socket.destroy(err as Error);
    }
  });
}
