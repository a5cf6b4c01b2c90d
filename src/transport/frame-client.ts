/**
 * Gateway side of the framed hop: multiplexes requests to one replica over 1–2 persistent
 * upgraded sockets, replies matched by id and allowed out of order.
 *
 * Hot path: one Pending record per request in a Map id → record; the record is its own deadline
 * (on the process's shared timer, util/deadlines.ts) and abort listener (handleEvent), so no
 * per-request closures except the Promise executor.
 */
import { EventEmitter } from "node:events";
import type { ClientRequest } from "node:http";
import type { Socket } from "node:net";
import { AnyServeError } from "../errors.js";
import { FrameConnection } from "./frame-connection.js";
import { dialFrames, dialTarget, type DialTarget } from "./frame-dial.js";
import { chunkCost, DEFAULT_MAX_FRAME_BYTES, FrameType, encodeFrame, metaError, STREAM_WINDOW_BYTES, type FrameMeta } from "./frames.js";
import type { CancelSignal } from "../util/cancel.js";
import { deadlines, Timed } from "../util/deadlines.js";

/**
 * A RESPONSE frame, or for a stream the END frame's meta (body empty). An error answer is
 * resolved too, as meta `{ code, error }` (see call-meta.ts; `metaError()` in frames.ts reads it).
 */
export interface FrameReply {
  meta: Record<string, unknown>;
  body: Buffer;
}

export interface FrameRequestOptions {
  /** Rejects with DEADLINE_EXCEEDED and sends CANCEL when no answer came in time. */
  timeoutMs?: number;
  /** Abort → rejects with CANCELLED (or with the reason, if it is an AnyServeError) and sends CANCEL. */
  signal?: CancelSignal;
  /**
   * Makes this a stream: called for each CHUNK, in order, before the promise resolves with END.
   * Returning a promise means the chunk is not passed on yet (its consumer is full): its bytes are
   * granted back to the replica (CREDIT) only once the promise settles, so the replica stops
   * producing a window later (frames.ts `STREAM_WINDOW_BYTES`; the REQUEST meta must carry it, as
   * call-meta's `callMeta` writes it for a stream).
   */
  onChunk?: (meta: Record<string, unknown> | null, body: Buffer) => void | Promise<void>;
}

export interface FrameClientOptions {
  /** http://host:port of the replica's HTTP server. */
  url: string;
  /** Sent as `Authorization: Bearer <token>` on the upgrade (the gateway: the replica's own secret). */
  token?: string;
  /** For an `https://` replica: CA bundle trusted besides the system's (its certificate must name the host). */
  ca?: Buffer | string;
  /** Sockets to the replica, default 2: more sockets mean less batching per write. */
  sockets?: number;
  /** Largest frame accepted or sent (the length field); default 64 MiB + 64 KiB. */
  maxFrameBytes?: number;
  /** Time allowed to connect and upgrade, default 2000 ms. */
  connectTimeoutMs?: number;
  /**
   * Open sockets do not keep the process alive (the SDK's direct client, which a script may not
   * close); a request in flight still does, through its timeout timer.
   */
  unref?: boolean;
}

const CONNECTING = 0,
  OPEN = 1,
  CLOSED = 2;

/** One socket to the replica, connecting or open. */
class ClientConn {
  state = CONNECTING;
  fc: FrameConnection | null = null;
  req: ClientRequest | null = null;
  goingAway = false;
  inFlight = 0;
  /** Requests made while connecting; sent on the 101. */
  waiting: Pending[] = [];
  /** Why the replica closed us, when it said (GOAWAY with `{ error }`), or our own protocol error. */
  closeError: AnyServeError | undefined;
  resolveDone!: () => void;
  readonly done = new Promise<void>((r) => {
    this.resolveDone = r;
  });
}

/** @internal One request in flight. It is its own abort listener and its own deadline. */
export class Pending extends Timed {
  conn!: ClientConn;
  resolve!: (r: FrameReply) => void;
  reject!: (e: unknown) => void;
  signal: CancelSignal | undefined;
  /** Encoded REQUEST, kept only while waiting for the connection. */
  parts: Buffer[] | null = null;
  started = false;
  /** A stream's bytes passed on but not yet granted back (sent as CREDIT once half a window). */
  ungranted = 0;
  constructor(
    readonly client: FrameClient,
    readonly id: number,
    readonly onChunk: FrameRequestOptions["onChunk"],
  ) {
    super();
  }
  handleEvent(): void {
    const reason: unknown = this.signal?.reason;
    this.client._cancel(
      this,
      reason instanceof AnyServeError ? reason : new AnyServeError("CANCELLED", "the request was cancelled by the caller"),
    );
  }
  onTimeout(): void {
    this.client._cancel(
      this,
      new AnyServeError("DEADLINE_EXCEEDED", `no answer from replica ${this.client.url} within the request's timeout`),
    );
  }
}

/**
 * Client of one replica's frame server. Connects lazily; a socket that fails fails only its own
 * requests (REPLICA_UNREACHABLE with `data.responseStarted`), and later requests reconnect.
 * Emits 'drain' when a congested socket drained (see {@link FrameClient.congested}) and
 * 'goaway' (in-flight count on that socket) when the replica sent GOAWAY.
 */
export class FrameClient extends EventEmitter {
  readonly url: string;
  /** The token shown on the upgrade. */
  readonly credential: string | undefined;
  /** Where and how its sockets are dialled (frame-dial.ts). */
  private readonly dial: DialTarget;
  private readonly maxFrameBytes: number;
  private readonly unref: boolean;
  private readonly pending = new Map<number, Pending>();
  private readonly slots: (ClientConn | null)[];
  private readonly conns = new Set<ClientConn>();
  private nextId = 1;
  private closing = false;

  constructor(opts: FrameClientOptions) {
    super();
    this.url = opts.url;
    this.credential = opts.token;
    this.dial = dialTarget(opts.url, opts.token, opts.ca, opts.connectTimeoutMs ?? 2000);
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.unref = opts.unref ?? false;
    this.slots = new Array<ClientConn | null>(Math.max(1, opts.sockets ?? 2)).fill(null);
  }

  /** Requests in flight, including those waiting for a connection. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** True when every open socket has more than 1 MiB queued: stop reading ingress until 'drain'. */
  get congested(): boolean {
    let open = 0;
    for (const c of this.slots) {
      if (c === null || c.fc === null || c.state !== OPEN) continue;
      if (!c.fc.congested) return false;
      open++;
    }
    return open > 0;
  }

  /** Sends one request; `meta` as for encodeFrame (JSON, its text, or bytes). Never throws: every failure is a rejected promise with an AnyServeError. */
  request(meta: Record<string, unknown> | string | Buffer, body: Buffer, opts?: FrameRequestOptions): Promise<FrameReply> {
    if (this.closing) return Promise.reject(new AnyServeError("INTERNAL", `the FrameClient for ${this.url} is closed`));
    const signal = opts?.signal;
    if (signal?.aborted) {
      const r: unknown = signal.reason;
      return Promise.reject(r instanceof AnyServeError ? r : new AnyServeError("CANCELLED", "the request was cancelled by the caller"));
    }
    const id = this.allocId();
    let parts: Buffer[];
    try {
      parts = encodeFrame(FrameType.REQUEST, id, meta, body);
    } catch (err) {
      return Promise.reject(new AnyServeError("INTERNAL", `cannot encode the request meta: ${(err as Error).message}`));
    }
    const length = parts[0]!.readUInt32LE(0);
    if (length > this.maxFrameBytes) {
      return Promise.reject(
        new AnyServeError(
          "PAYLOAD_TOO_LARGE",
          `a request frame of ${length} bytes exceeds the maximum frame size of ${this.maxFrameBytes} bytes`,
        ),
      );
    }
    const p = new Pending(this, id, opts?.onChunk);
    const promise = new Promise<FrameReply>((res, rej) => {
      p.resolve = res;
      p.reject = rej;
    });
    this.pending.set(id, p);
    const conn = this.pick();
    p.conn = conn;
    conn.inFlight++;
    if (conn.fc !== null) conn.fc.write(parts);
    else {
      p.parts = parts;
      conn.waiting.push(p);
    }
    const ms = opts?.timeoutMs;
    if (ms !== undefined) deadlines.set(p, ms);
    if (signal !== undefined) {
      p.signal = signal;
      signal.addEventListener("abort", p, { once: true });
    }
    return promise;
  }

  /** Fails every request in flight with CANCELLED, closes every socket; resolves when all are closed. */
  async close(): Promise<void> {
    this.closing = true;
    for (const p of [...this.pending.values()])
      this._cancel(p, new AnyServeError("CANCELLED", `the FrameClient for ${this.url} was closed`), false);
    const done: Promise<void>[] = [];
    for (const c of this.conns) {
      done.push(c.done);
      if (c.fc !== null) c.fc.destroy();
      else c.req?.destroy();
    }
    await Promise.all(done);
  }

  private allocId(): number {
    let id = this.nextId;
    while (id === 0 || this.pending.has(id)) id = (id + 1) >>> 0; // 0 is for connection-level frames
    this.nextId = (id + 1) >>> 0;
    return id;
  }

  /** Least in-flight socket; an empty slot (connected lazily) wins only over a busy socket. */
  private pick(): ClientConn {
    let best: ClientConn | null = null;
    let bestScore = Infinity;
    let empty = -1;
    for (let i = 0; i < this.slots.length; i++) {
      const c = this.slots[i] ?? null;
      if (c === null || c.fc?.closed) {
        if (empty < 0) empty = i;
        continue;
      } // a dying socket is replaced
      const score = c.inFlight + (c.fc?.congested ? 1e9 : 0);
      if (score < bestScore) {
        best = c;
        bestScore = score;
      }
    }
    if (best !== null && (bestScore === 0 || empty < 0)) return best;
    const conn = new ClientConn();
    this.slots[empty] = conn;
    this.conns.add(conn);
    this.connect(conn);
    return conn;
  }

  private connect(conn: ClientConn): void {
    conn.req =
      dialFrames(this.dial, {
        upgraded: (socket, head) => {
          if (conn.state !== CONNECTING)
            socket.destroy(); // closed or failed meanwhile
          else this.open(conn, socket, head);
        },
        failed: (why, code, status) => this.failConnect(conn, why, code, status),
      }) ?? null;
  }

  private open(conn: ClientConn, socket: Socket, head: Buffer): void {
    conn.state = OPEN;
    if (this.unref) socket.unref();
    const fc = new FrameConnection(
      socket,
      {
        onFrame: (type, id, meta, body) => this.onFrame(conn, type, id, meta, body),
        onClose: (err) => this.onClose(conn, err),
        onProtocolError: (err) => {
          conn.closeError = new AnyServeError("UPSTREAM_PROTOCOL_ERROR", `replica ${this.url} sent a bad frame: ${err.message}`);
          fc.destroy(err);
        },
        onDrain: () => this.emit("drain"),
      },
      { maxFrameBytes: this.maxFrameBytes },
    );
    conn.fc = fc;
    for (const p of conn.waiting) {
      if (p.parts !== null && this.pending.get(p.id) === p) fc.write(p.parts);
      p.parts = null;
    }
    conn.waiting = [];
    fc.onData(head);
  }

  private failConnect(
    conn: ClientConn,
    why: string,
    code: "REPLICA_UNREACHABLE" | "SHUTTING_DOWN" = "REPLICA_UNREACHABLE",
    status?: number,
  ): void {
    if (conn.state !== CONNECTING) return;
    this.retire(conn);
    // `sent: false`: the request never left this process, so the replica cannot have run it.
    const data: Record<string, unknown> = { responseStarted: false, sent: false, replica: this.url };
    if (status !== undefined) data.status = status;
    for (const p of conn.waiting) {
      if (this.pending.get(p.id) !== p) continue;
      this.settle(p);
      p.reject(new AnyServeError(code, `replica ${this.url} is unreachable: ${why}`, data));
    }
    conn.waiting = [];
  }

  private onClose(conn: ClientConn, err: Error | undefined): void {
    this.retire(conn);
    if (conn.inFlight === 0) return;
    const partialId = conn.fc!.decoder.partialId;
    for (const p of [...this.pending.values()]) {
      if (p.conn !== conn) continue;
      const started = p.started || p.id === partialId;
      this.settle(p);
      const data = { responseStarted: started, replica: this.url };
      const ce = conn.closeError;
      p.reject(
        ce !== undefined
          ? new AnyServeError(ce.code, ce.message, { ...ce.data, ...data })
          : new AnyServeError(
              "REPLICA_UNREACHABLE",
              `replica ${this.url} closed the frame connection ${started ? "after part of the answer had arrived" : "before any byte of the answer arrived"}${err ? ` (${err.message})` : ""}`,
              data,
            ),
      );
    }
  }

  private retire(conn: ClientConn): void {
    conn.state = CLOSED;
    const i = this.slots.indexOf(conn);
    if (i >= 0) this.slots[i] = null;
    this.conns.delete(conn);
    conn.resolveDone();
  }

  private onFrame(conn: ClientConn, type: number, id: number, meta: FrameMeta | null, body: Buffer): void {
    if (type === FrameType.RESPONSE || type === FrameType.END) {
      const p = this.pending.get(id);
      if (p === undefined || p.conn !== conn) return; // cancelled or timed out: the answer crossed our CANCEL
      this.settle(p);
      p.resolve({ meta: meta ?? {}, body }); // an error answer ({code, error}) is the caller's to read
    } else if (type === FrameType.CHUNK) {
      const p = this.pending.get(id);
      if (p === undefined || p.conn !== conn) return;
      p.started = true;
      if (p.onChunk === undefined) {
        this._cancel(
          p,
          new AnyServeError("UPSTREAM_PROTOCOL_ERROR", `replica ${this.url} streamed an answer to a request that is not a stream`),
        );
        return;
      }
      let taken: void | Promise<void>;
      try {
        taken = p.onChunk(meta, body);
      } catch (e) {
        this._cancel(p, AnyServeError.from(e, "INTERNAL"));
        return;
      }
      const cost = chunkCost(body);
      if (!(taken instanceof Promise)) this.grant(p, cost);
      else {
        const grant = (): void => this.grant(p, cost);
        taken.then(grant, grant);
      }
    } else if (type === FrameType.GOAWAY) {
      conn.goingAway = true;
      const e = metaError(meta);
      if (e !== undefined) conn.closeError = new AnyServeError(e.code, `replica ${this.url} closed the frame connection: ${e.message}`);
      const i = this.slots.indexOf(conn);
      if (i >= 0) this.slots[i] = null; // new ids go to a fresh socket; this one finishes its in-flight ids
      if (conn.inFlight === 0) conn.fc!.end();
      this.emit("goaway", conn.inFlight);
    } else if (type === FrameType.PING) {
      conn.fc!.send(FrameType.PONG, id, null);
    }
  }

  /** A stream's consumer took `cost` bytes: tell the replica once they add up to half a window. */
  private grant(p: Pending, cost: number): void {
    if (this.pending.get(p.id) !== p) return; // answered or cancelled: nothing more will come
    p.ungranted += cost;
    if (p.ungranted < STREAM_WINDOW_BYTES / 2) return;
    p.conn.fc?.send(FrameType.CREDIT, p.id, { n: p.ungranted });
    p.ungranted = 0;
  }

  /** Removes a request from every table; ends a going-away socket that became idle. */
  private settle(p: Pending): void {
    this.pending.delete(p.id);
    const conn = p.conn;
    conn.inFlight--;
    deadlines.clear(p);
    if (p.signal !== undefined) p.signal.removeEventListener("abort", p);
    if (conn.goingAway && conn.inFlight === 0 && conn.fc !== null) conn.fc.end();
  }

  /** @internal Fails a request still in flight and tells the replica to stop working on it. */
  _cancel(p: Pending, err: AnyServeError, sendCancel = true): void {
    if (this.pending.get(p.id) !== p) return;
    // CANCEL before settle(): settle may end an idle going-away socket.
    if (sendCancel && p.parts === null && p.conn.fc !== null) {
      p.conn.fc.send(FrameType.CANCEL, p.id, { code: err.code === "DEADLINE_EXCEEDED" ? err.code : "CANCELLED" });
    }
    this.settle(p);
    p.reject(err);
  }
}
