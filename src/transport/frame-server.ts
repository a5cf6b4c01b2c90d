/**
 * Replica side of the framed hop. The replica keeps its normal node:http server for clients that
 * call it directly; the gateway upgrades one or two connections on the same port to frames
 * (`GET /_anyserve/frames`, `Upgrade: anyserve-frames`) and multiplexes requests over them.
 *
 * Why a frame server: a node:http server costs the replica 55–103 µs CPU per request, a frame
 * reader that answers a whole input chunk with one write 9–17 µs.
 *
 * Error answers follow the convention of call-meta.ts / frames.ts `errorMeta`: `{ code, error }`.
 */
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { AnyServeError } from "../errors.js";
import { FrameConnection } from "./frame-connection.js";
import { readCallMeta } from "./call-meta.js";
import { chunkCost, FrameProtocolError, FrameType, encodeFrame, errorMeta, type FrameMeta, type MetaReaders } from "./frames.js";
import { bearerMatches, tokenDigest } from "../util/auth.js";
import { answerWithoutUpgrade, closeWith } from "../util/http.js";
import { Cancellation, type CancelSignal } from "../util/cancel.js";
import { Gate } from "../util/gate.js";

/** The path and Upgrade token of the framed hop. */
export const FRAMES_PATH = "/_anyserve/frames";
export const FRAMES_PROTOCOL = "anyserve-frames";

/** One request received over frames. `body` may be a view into a socket chunk: copy it to keep it long. */
export interface FrameRequest {
  id: number;
  meta: Record<string, unknown>;
  body: Buffer;
  /** Fires on CANCEL from the gateway (reason: CANCELLED or DEADLINE_EXCEEDED) or when the connection closes. */
  signal: CancelSignal;
  /** True on a connection {@link FrameServerOptions.authorize} called the gateway's: only its delegation state counts. */
  trusted: boolean;
}

/**
 * Answers one {@link FrameRequest}: either one `reply`, or any number of `chunk`s and one `end`.
 * Calls after the answer is complete, after a cancel or after the connection closed are dropped.
 */
export interface FrameResponder {
  /** The answer; `meta` null: a plain JSON answer (see call-meta's `answerMeta`). */
  reply(meta: Record<string, unknown> | null, body?: Buffer): void;
  /**
   * One streamed item. Returns a promise when the stream's window is used up (its consumer has
   * not taken what was sent: frames.ts `STREAM_WINDOW_BYTES`) or the socket is congested: produce
   * the next item once it settles. It settles when credit comes back, or when the request is
   * cancelled or the connection closes (then `closed` is true).
   */
  chunk(meta: Record<string, unknown> | null, body: Buffer): void | Promise<void>;
  end(meta?: Record<string, unknown>): void;
  /** True once the answer is complete, the request was cancelled or the connection closed. */
  readonly closed: boolean;
}

/** Handles one request. A synchronous throw is answered as `{ code, error }` (WORKER_ERROR unless it has a code). */
export type FrameHandler = (req: FrameRequest, res: FrameResponder) => void;

/** Who opened a frame connection: the gateway (`trusted`), another caller, or nobody allowed (refused with 401). */
export type FramePeer = "trusted" | "client" | undefined;

export interface FrameServerOptions {
  /** Bearer token the gateway must present; unset = no check. Ignored when `authorize` is given. */
  token?: string;
  /** Decides by the upgrade's `Authorization` header who is connecting (the replica: its secret = the gateway). */
  authorize?: (authorization: string | undefined) => FramePeer;
  /** Largest frame accepted (the length field). Default 64 MiB + 64 KiB. */
  maxFrameBytes?: number;
}

/** Control of the frame server attached to an http.Server. */
export interface FrameServerControl {
  /** Sends GOAWAY on every open connection; with `refuseNew`, later upgrades get 503. */
  goAway(opts?: { refuseNew?: boolean }): void;
  /** Stops taking upgrades and destroys every frame connection (their in-flight requests abort). */
  close(): void;
  readonly connections: number;
}

/** REQUEST metas are call metas, binary or JSON (call-meta.ts). */
const REQUEST_META: MetaReaders = { [FrameType.REQUEST]: readCallMeta };

/** Per-connection state: its in-flight requests and whether reading is paused for backpressure. */
class ServerConn {
  readonly inflight = new Map<number, Responder>();
  readonly fc: FrameConnection;
  paused = false;
  /** Streams waiting for the socket to drain (their window may be open). */
  readonly blocked = new Set<Responder>();

  constructor(
    socket: Socket,
    private readonly handler: FrameHandler,
    maxFrameBytes: number | undefined,
    private readonly onGone: (c: ServerConn) => void,
    readonly trusted: boolean,
  ) {
    this.fc = new FrameConnection(
      socket,
      {
        onFrame: (type, id, meta, body) => this.onFrame(type, id, meta, body),
        onClose: () => this.onClose(),
        onProtocolError: (err) => this.onProtocolError(err),
        onDrain: () => {
          if (!this.paused) return;
          this.paused = false;
          this.fc.socket.resume();
          if (this.blocked.size === 0) return;
          const blocked = [...this.blocked];
          this.blocked.clear();
          for (const res of blocked) res.wakeIfOpen();
        },
      },
      { metaReaders: REQUEST_META, ...(maxFrameBytes === undefined ? {} : { maxFrameBytes }) },
    );
  }

  private onFrame(type: number, id: number, meta: FrameMeta | null, body: Buffer): void {
    switch (type) {
      case FrameType.REQUEST: {
        if (this.inflight.has(id)) throw new FrameProtocolError(`request id ${id} is already in flight on this connection`);
        const res = new Responder(this, id, windowOf(meta));
        this.inflight.set(id, res);
        try {
          this.handler(new IncomingFrame(id, meta ?? {}, body, res, this.trusted), res);
        } catch (err) {
          if (!res.closed) res.finish(res.streaming ? FrameType.END : FrameType.RESPONSE, errorMeta(err), undefined);
        }
        return;
      }
      case FrameType.CANCEL: {
        const res = this.inflight.get(id);
        if (res === undefined) return; // already answered: the CANCEL crossed our reply
        this.inflight.delete(id);
        const code = meta?.code === "DEADLINE_EXCEEDED" ? "DEADLINE_EXCEEDED" : "CANCELLED";
        res.abort(
          new AnyServeError(
            code,
            code === "CANCELLED" ? "the gateway cancelled the request" : "the request's deadline passed at the gateway",
          ),
        );
        return;
      }
      case FrameType.CREDIT: {
        const n = meta?.n;
        if (typeof n === "number" && n > 0) this.inflight.get(id)?.credit(n); // an unknown id: answered or cancelled already
        return;
      }
      case FrameType.PING:
        this.fc.send(FrameType.PONG, id, null);
        return;
      default:
        return; // RESPONSE/CHUNK/END/PONG/GOAWAY from a client, or a type from a later revision
    }
  }

  /** Tells the gateway why (GOAWAY with `{ code, error }`), then ends the socket; destroy if it lingers. */
  private onProtocolError(err: FrameProtocolError): void {
    this.abortAll(new AnyServeError("CANCELLED", `frame connection closed: ${err.message}`));
    this.fc.send(FrameType.GOAWAY, 0, { code: err.code, error: err.message });
    this.fc.end();
    setTimeout(() => this.fc.destroy(), 2000).unref();
  }

  private onClose(): void {
    this.abortAll(new AnyServeError("CANCELLED", "the frame connection to the gateway closed"));
    this.onGone(this);
  }

  private abortAll(reason: AnyServeError): void {
    if (this.inflight.size === 0) return;
    const all = [...this.inflight.values()];
    this.inflight.clear();
    for (const res of all) res.abort(reason);
  }

  /** Stops reading requests while the gateway does not read our replies. */
  checkCongestion(): void {
    if (!this.paused && this.fc.congested) {
      this.paused = true;
      this.fc.socket.pause();
    }
  }
}

/** A request; its signal is created on first use (an AbortController was 15% of the frame server's CPU). */
class IncomingFrame implements FrameRequest {
  constructor(
    readonly id: number,
    readonly meta: Record<string, unknown>,
    readonly body: Buffer,
    private readonly res: Responder,
    readonly trusted: boolean,
  ) {}
  get signal(): CancelSignal {
    return this.res.signal;
  }
}

/** A stream REQUEST's window (call meta `w`); Infinity when it gave none (no flow control). */
function windowOf(meta: FrameMeta | null): number {
  const w = meta?.w;
  return typeof w === "number" && w > 0 ? w : Number.POSITIVE_INFINITY;
}

/** The responder of one request; also owns its abort state and, for a stream, its window. */
class Responder implements FrameResponder {
  streaming = false;
  private done = false;
  private cancel: Cancellation | undefined;
  private abortReason: AnyServeError | undefined;
  /** Bytes (chunkCost) the stream may still send before it waits for credit. */
  private window: number;
  /** Where `chunk`'s callers wait for credit (several may: a worker's chunks keep coming within its own window). */
  private readonly room = new Gate();

  constructor(
    private readonly conn: ServerConn,
    private readonly id: number,
    window: number,
  ) {
    this.window = window;
  }

  get closed(): boolean {
    return this.done || this.conn.fc.closed;
  }

  reply(meta: Record<string, unknown> | null, body?: Buffer): void {
    this.finish(FrameType.RESPONSE, meta, body);
  }

  chunk(meta: Record<string, unknown> | null, body: Buffer): void | Promise<void> {
    if (this.closed) return;
    this.streaming = true;
    this.send(FrameType.CHUNK, meta, body);
    this.window -= chunkCost(body);
    if (this.window > 0 && !this.conn.paused) return;
    if (this.closed) return;
    if (this.conn.paused) this.conn.blocked.add(this);
    return this.room.wait();
  }

  /** @internal A CREDIT frame: the consumer took `n` more bytes. */
  credit(n: number): void {
    this.window += n;
    this.wakeIfOpen();
  }

  /** @internal Lets a waiting producer go on when its window is open and the socket not congested. */
  wakeIfOpen(): void {
    if (!this.room.waiting) return;
    if (this.conn.paused) {
      this.conn.blocked.add(this);
      return;
    }
    if (this.window <= 0) return;
    this.release();
  }

  /** Settles the waiting producers' promise (credit came, or the request ended). */
  private release(): void {
    this.conn.blocked.delete(this);
    this.room.open();
  }

  end(meta?: Record<string, unknown>): void {
    this.finish(FrameType.END, meta, undefined);
  }

  /** @internal Sends the last frame of this id. */
  finish(type: number, meta: Record<string, unknown> | null | undefined, body: Buffer | undefined): void {
    if (this.closed) return;
    this.done = true;
    this.conn.inflight.delete(this.id);
    this.send(type, meta, body);
    this.release();
  }

  /**
   * Encodes and queues a frame. A meta that JSON cannot encode, or a frame over the maximum size
   * (which would make the gateway drop the whole connection), becomes an INTERNAL error answer
   * that ends this id (END for a stream).
   */
  private send(type: number, meta: Record<string, unknown> | null | undefined, body: Buffer | undefined): void {
    const max = this.conn.fc.decoder.maxFrameBytes;
    let parts: Buffer[] | undefined;
    let problem: string;
    try {
      parts = encodeFrame(type, this.id, meta, body);
      const length = parts[0]!.readUInt32LE(0);
      problem = length > max ? `the replica's answer frame of ${length} bytes exceeds the maximum frame size of ${max} bytes` : "";
    } catch (err) {
      problem = `the replica's answer meta cannot be encoded: ${(err as Error).message}`;
    }
    if (problem !== "") {
      if (!this.done) {
        this.done = true;
        this.conn.inflight.delete(this.id);
      }
      parts = encodeFrame(type === FrameType.CHUNK ? FrameType.END : type, this.id, errorMeta(new AnyServeError("INTERNAL", problem)));
    }
    this.conn.fc.write(parts!);
    this.conn.checkCongestion();
  }

  get signal(): CancelSignal {
    if (this.cancel === undefined) {
      this.cancel = new Cancellation();
      if (this.abortReason !== undefined) this.cancel.abort(this.abortReason);
    }
    return this.cancel;
  }

  /** @internal */
  abort(reason: AnyServeError): void {
    this.done = true;
    this.abortReason = reason;
    this.cancel?.abort(reason);
    this.release();
  }
}

/**
 * Serves frames on `server`'s port: listens to its 'upgrade' event for {@link FRAMES_PATH}. Any
 * other request offering an upgrade (`h2c`, `websocket`, or frames on another path) is answered as
 * the plain HTTP/1.1 request it also is, the offer ignored (util/http.ts `answerWithoutUpgrade`).
 */
export function attachFrameServer(server: Server, handler: FrameHandler, opts: FrameServerOptions = {}): FrameServerControl {
  const conns = new Set<ServerConn>();
  const wantDigest = opts.token === undefined ? undefined : tokenDigest(opts.token);
  let refuseNew = false;
  let closed = false;
  const onGone = (c: ServerConn): void => {
    conns.delete(c);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? "").split("?", 1)[0];
    if (path !== FRAMES_PATH || (req.headers.upgrade ?? "").toLowerCase() !== FRAMES_PROTOCOL) {
      answerWithoutUpgrade(server, req, socket, head);
      return;
    }
    if (closed) {
      socket.destroy();
      return;
    }
    socket.on("error", () => {}); // errors before the FrameConnection takes over are just closes
    const peer: FramePeer = opts.authorize
      ? opts.authorize(req.headers.authorization)
      : wantDigest === undefined || bearerMatches(req.headers.authorization, wantDigest)
        ? "trusted"
        : undefined;
    if (peer === undefined) {
      closeWith(socket, new AnyServeError("UNAUTHENTICATED", "missing or wrong bearer token for the frame connection"));
      return;
    }
    if (refuseNew) {
      closeWith(socket, new AnyServeError("SHUTTING_DOWN", "the replica is draining"));
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${FRAMES_PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`);
    const conn = new ServerConn(socket as Socket, handler, opts.maxFrameBytes, onGone, peer === "trusted");
    conns.add(conn);
    conn.fc.onData(head);
  };
  server.on("upgrade", onUpgrade);

  return {
    goAway(o?: { refuseNew?: boolean }): void {
      if (o?.refuseNew) refuseNew = true;
      for (const c of conns) c.fc.send(FrameType.GOAWAY, 0, null);
    },
    close(): void {
      closed = true;
      server.off("upgrade", onUpgrade);
      for (const c of conns) c.fc.destroy();
    },
    get connections(): number {
      return conns.size;
    },
  };
}
