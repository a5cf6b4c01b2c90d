/**
 * One framed socket, shared by both ends of the hop: a {@link FrameDecoder} on the read side and a
 * coalescing write side.
 *
 * Why coalescing: the main win of the framed hop is that every frame queued during one
 * event-loop turn (all requests the gateway received in one poll phase, all replies a replica
 * produced for one input chunk) leaves in ONE socket write. The first frame of a turn schedules a
 * flush with setImmediate, which runs right after the poll phase — late enough to collect the
 * frames of every socket read in that phase and of the microtasks they spawned.
 */
import type { Socket } from "node:net";
import {
  DEFAULT_MAX_FRAME_BYTES,
  FrameDecoder,
  FrameProtocolError,
  encodeFrame,
  type FrameMeta,
  type FrameSink,
  type MetaReaders,
} from "./frames.js";

/** Frame parts up to this size are joined with their neighbours into one buffer; bigger ones are written uncopied. */
const JOIN_MAX_PART_BYTES = 4 * 1024;

/** Callbacks of a {@link FrameConnection}; plain functions, not EventEmitter, to keep dispatch cheap. */
export interface FrameConnectionEvents {
  /** Each decoded frame, in order. */
  onFrame: FrameSink;
  /** The socket closed; `err` is why (a protocol error, a socket error) or undefined for a clean close. */
  onClose(err: Error | undefined): void;
  /** Bad input from the peer. Default: destroy the socket with the error. */
  onProtocolError?(err: FrameProtocolError): void;
  /** The write side was {@link FrameConnection.congested} and has drained. */
  onDrain?(): void;
}

export interface FrameConnectionOptions {
  /** Largest frame accepted from the peer (the length field). Default 64 MiB + 64 KiB. */
  maxFrameBytes?: number;
  /** Bytes queued in the socket above which the connection reports itself congested. Default 1 MiB. */
  highWaterMark?: number;
  /** Readers of metas that are not JSON, by frame type. */
  metaReaders?: MetaReaders;
}

/** A framed, full-duplex connection over an already-upgraded socket. */
export class FrameConnection {
  readonly decoder: FrameDecoder;
  /** The first error seen on this connection, reported to onClose. */
  error: Error | undefined;
  private readonly highWaterMark: number;
  private flushScheduled = false;
  /** Frame parts of this event-loop turn, written together by flush(). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private ending = false;
  private isClosed = false;
  private reportedCongested = false;

  constructor(
    readonly socket: Socket,
    private readonly events: FrameConnectionEvents,
    opts: FrameConnectionOptions = {},
  ) {
    this.decoder = new FrameDecoder(events.onFrame, opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, opts.metaReaders);
    this.highWaterMark = opts.highWaterMark ?? 1024 * 1024;
    socket.setNoDelay(true);
    socket.setTimeout(0); // the HTTP server's idle timeouts must not apply to a long-lived frame socket
    socket.setKeepAlive(true, 30_000); // find peers that vanished without a FIN
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    // No half-open connections: when the peer ends, end too (http.Server sockets allow half-open).
    socket.on("end", () => {
      if (!socket.writableEnded) socket.end();
    });
    socket.on("error", (err) => {
      this.error ??= err;
    });
    socket.on("drain", () => {
      if (!this.reportedCongested) return;
      this.reportedCongested = false;
      this.events.onDrain?.();
    });
    socket.on("close", () => {
      this.isClosed = true;
      this.events.onClose(this.error);
    });
  }

  /** Feeds bytes that arrived with the upgrade (the `head` buffer) or from the socket. */
  onData(chunk: Buffer): void {
    if (chunk.length === 0) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      if (err instanceof FrameProtocolError) {
        this.error ??= err;
        if (this.events.onProtocolError) this.events.onProtocolError(err);
        else this.destroy(err);
      } else {
        // A bug in a frame handler: the decoder is mid-chunk, so the stream position is lost.
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /** True once the connection is closing or closed: frames sent now are dropped. */
  get closed(): boolean {
    return this.isClosed || this.ending || this.socket.destroyed;
  }

  /**
   * True while more than highWaterMark bytes wait in the socket: the caller should stop reading
   * its own ingress until onDrain.
   */
  get congested(): boolean {
    if (this.socket.writableLength + this.pendingBytes < this.highWaterMark) return false;
    this.reportedCongested = true;
    return true;
  }

  /** Queues one frame; it leaves with every other frame of this event-loop turn. */
  send(type: number, id: number, meta: FrameMeta | null | undefined, body?: Buffer): void {
    this.write(encodeFrame(type, id, meta, body));
  }

  /** Queues already-encoded frame parts (from encodeFrame). */
  write(parts: Buffer[]): void {
    if (this.closed) return;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(flushTurn, this);
    }
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      this.pending.push(part);
      this.pendingBytes += part.length;
    }
  }

  /** Flushes what is queued, then closes the write side; the socket closes when the peer ends too. */
  end(): void {
    if (this.closed) return;
    this.ending = true;
    this.flush();
    this.socket.end();
  }

  /** Closes at once; frames still queued are lost. */
  destroy(err?: Error): void {
    if (err) this.error ??= err;
    this.socket.destroy();
  }

  /**
   * @internal Writes what this turn queued. Small parts (headers, metas, inline bodies) are joined
   * into one buffer: copying a few hundred bytes is cheaper than the stream's per-chunk bookkeeping
   * for a writev. A big body is never copied: it is written as it is, between the joined runs,
   * all corked into one writev.
   */
  flush(): void {
    this.flushScheduled = false;
    const parts = this.pending;
    if (parts.length === 0) return;
    this.pending = [];
    this.pendingBytes = 0;
    const socket = this.socket;
    if (socket.destroyed) return;
    if (parts.length === 1) {
      socket.write(parts[0]!);
      return;
    }
    socket.cork();
    let run: Buffer[] = [];
    let runBytes = 0;
    const writeRun = (): void => {
      if (run.length === 0) return;
      socket.write(run.length === 1 ? run[0]! : Buffer.concat(run, runBytes));
      run = [];
      runBytes = 0;
    };
    for (const part of parts) {
      if (part.length > JOIN_MAX_PART_BYTES) {
        writeRun();
        socket.write(part);
      } else {
        run.push(part);
        runBytes += part.length;
      }
    }
    writeRun();
    socket.uncork();
  }
}

function flushTurn(conn: FrameConnection): void {
  conn.flush();
}
