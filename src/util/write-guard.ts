/**
 * Cuts connections whose client stopped reading: a socket that has had answer bytes waiting to go
 * out, none of which the client took, for `write_timeout` is destroyed, so what it holds (a whole
 * answer, a stream's chunks, the call behind them) is freed and the call is cancelled — the
 * handler's signal fires. Without it, a client that asks and never reads kept its answers in
 * memory for as long as it kept the connection open.
 *
 * "Took" is measured on the socket itself, so a slow client that reads is never cut: progress is a
 * write that completed (`bytesWritten - writableLength` grew) or libuv's queue for the kernel
 * (`writeQueueSize`) shrinking, which moves as the client reads even within one large write. A
 * connection with nothing waiting to be written is not watched (idle and keep-alive times are the
 * server's own).
 *
 * One timer per guard, not per write: watching costs a Map entry per connection, and the sweep
 * reads three numbers per connection.
 */
import type { Server as HttpServer } from "node:http";
import type { Server as NetServer, Socket } from "node:net";
import { AnyServeError } from "../errors.js";
import { collectSoon, GC_AFTER_BYTES } from "./gc.js";

/** Progress of one socket's writes, as the sweep last saw it. */
export interface WriteProgress {
  /** Bytes whose write completed. */
  done: number;
  /** Bytes libuv still had to hand to the kernel. */
  queued: number;
  /** Bytes waiting to be written at the last look (what a close would abandon). */
  waiting: number;
  /** When output was last seen to move, or to be absent (ms, Date.now()). */
  since: number;
}

/** A fresh progress record for a socket that starts being watched at `now`. */
export function newProgress(now: number): WriteProgress {
  return { done: 0, queued: 0, waiting: 0, since: now };
}

/**
 * A watched socket closed: if it left a large answer unwritten, V8 is asked to collect, so the
 * memory returns even in a process that then idles (util/gc.ts says why that needs asking).
 */
export function abandoned(p: WriteProgress): void {
  if (p.waiting >= GC_AFTER_BYTES) collectSoon();
}

/**
 * Updates `p` from `socket` at `now`; true when output has waited without moving for `timeoutMs`
 * (the socket should be cut). Shared by the guard and the fast ingress's own sweep.
 */
export function writeStalled(socket: Socket, p: WriteProgress, now: number, timeoutMs: number): boolean {
  const waiting = socket.writableLength;
  const queued = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle?.writeQueueSize ?? 0;
  p.waiting = waiting;
  if (waiting === 0 && queued === 0) {
    p.since = now;
    p.queued = 0;
    return false;
  }
  const done = socket.bytesWritten - waiting;
  if (done > p.done || queued < p.queued) p.since = now;
  p.done = done;
  p.queued = queued;
  return now - p.since >= timeoutMs;
}

/** The reason a stalled connection is closed with: the cancellation its calls see. */
export function stallError(timeoutMs: number): AnyServeError {
  return new AnyServeError(
    "CANCELLED",
    `the client took none of its answer for ${timeoutMs / 1000} s (write_timeout): the connection was closed`,
  );
}

/** The error a socket was destroyed with when it was one of ours (a stall), else a plain "client left". */
export function closeReason(socket: Socket): AnyServeError {
  const e = socket.errored;
  return e instanceof AnyServeError ? e : new AnyServeError("CANCELLED", "the client closed the connection");
}

/** Watches every connection of `server` (node:http or net); returns the function that stops watching. */
export function guardWrites(server: HttpServer | NetServer, timeoutMs: number): () => void {
  const watched = new Map<Socket, WriteProgress>();
  const every = Math.max(10, Math.min(1_000, Math.floor(timeoutMs / 4)));
  let timer: NodeJS.Timeout | undefined;
  const sweep = (): void => {
    const now = Date.now();
    for (const [socket, p] of watched) {
      if (socket.destroyed) watched.delete(socket);
      else if (writeStalled(socket, p, now, timeoutMs)) socket.destroy(stallError(timeoutMs)); // 'close' follows
    }
    if (watched.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  const onConnection = (socket: Socket): void => {
    if (watched.has(socket)) return; // the fast ingress hands a socket it accepted over to node:http
    const p = newProgress(Date.now());
    watched.set(socket, p);
    socket.once("close", () => {
      watched.delete(socket);
      abandoned(p);
    });
    if (timer === undefined) {
      timer = setInterval(sweep, every);
      timer.unref();
    }
  };
  server.on("connection", onConnection);
  return () => {
    server.off("connection", onConnection);
    clearInterval(timer);
    timer = undefined;
    watched.clear();
  };
}
