/**
 * `ctx.objects` in a Node worker process, for objects owned by another replica: read through the
 * replica as FETCH messages (docs/worker-protocol.md), as Python workers do. A worker process holds
 * none of the replica's credentials (process-handle.ts), so it could neither look the owner up in
 * the API server's registry nor show the owner's object endpoint the peer key under a
 * control-plane token — the default under `up`. The replica reads with its own store: its peers,
 * its token, its cache (`object_store.cache`, in the directory this worker shares).
 * Objects in the shared directory are still read here, from the file.
 *
 * A range is one FETCH `range` (only its bytes cross, from the owner too); a stream — and a whole
 * object, which may be far larger than one message — is a FETCH `stream` whose FETCH_CHUNKs come
 * within a window the handler's reading reopens (FETCH_CREDIT, by half windows), so a handler that
 * stops reading holds at most a window here and in the replica. Destroying the stream, the read's
 * signal and the job's end send FETCH_CANCEL.
 */
import { Readable } from "node:stream";
import { AnyServeError } from "../errors.js";
import type { ByteRange, StoredObject } from "../objects/backends/base.js";
import type { RemoteObjects } from "../objects/types.js";
import { chunkCost } from "../transport/frames.js";
import { ReplicaRequests } from "./replica-requests.js";
import { errorOf, Msg, WORKER_STREAM_WINDOW_BYTES, type Meta } from "./worker-protocol.js";

const NO_BODY = Buffer.alloc(0);

export interface ReplicaObjectsOptions {
  /** Sends one message to the replica now. */
  send: (type: number, id: number, meta: Meta, body: Buffer) => void;
  /** The job running now: the replica binds the read to its abort. */
  job?: () => number | undefined;
}

export class ReplicaObjects implements RemoteObjects {
  readonly #o: ReplicaObjectsOptions;
  readonly #requests: ReplicaRequests;
  readonly #streams = new Map<number, FetchStream>();

  constructor(o: ReplicaObjectsOptions) {
    this.#o = o;
    this.#requests = new ReplicaRequests(o.send);
  }

  /** Stream FETCHes open (leak checks, tests). */
  get openStreams(): number {
    return this.#streams.size;
  }

  async stat(ref: string, signal: AbortSignal): Promise<StoredObject> {
    return storedOf((await this.#fetch(ref, { op: "stat" }, signal)).meta, ref);
  }

  /** The whole object: as a stream (it may be larger than one message), gathered here. */
  async read(ref: string, signal: AbortSignal): Promise<{ info: StoredObject; bytes: Buffer }> {
    const s = this.#open(ref, undefined, signal);
    const bytes = Buffer.concat(await s.toArray());
    return { info: s.info!, bytes };
  }

  async readRange(ref: string, range: ByteRange, signal: AbortSignal): Promise<Buffer> {
    const { meta, body } = await this.#fetch(ref, { op: "range", offset: range.start, length: range.end - range.start + 1 }, signal);
    const want = range.end - range.start + 1;
    if (body.length !== want)
      throw new AnyServeError("INTERNAL", `object ${storedOf(meta, ref).id}: the replica sent ${body.length} bytes for a range of ${want}`);
    return body;
  }

  async stream(ref: string, range: ByteRange | undefined, signal: AbortSignal): Promise<Readable> {
    const s = this.#open(ref, range, signal);
    // Opened as the store's other streams are: once the replica has found the object (or failed to).
    await s.opened;
    return s;
  }

  /** A FETCHED from the replica. */
  answer(id: number, meta: Meta, body: Buffer): void {
    this.#requests.answer(id, meta, body);
  }

  /** A FETCH_CHUNK or FETCH_END from the replica. */
  streamed(type: number, id: number, meta: Meta, body: Buffer): void {
    const s = this.#streams.get(id);
    if (s === undefined) return; // given up on (cancelled)
    if (type === Msg.FETCH_CHUNK) s.arrived(meta, body);
    else {
      this.#streams.delete(id);
      s.ended(errorOf(meta) ?? null);
    }
  }

  /** Job `job` ended: its streams still open are cancelled (a handler may return without finishing one). */
  jobEnded(job: number): void {
    for (const s of this.#streams.values()) {
      if (s.job === job) s.destroy(new AnyServeError("CANCELLED", "the job that opened this object stream has ended"));
    }
  }

  #open(ref: string, range: ByteRange | undefined, signal: AbortSignal): FetchStream {
    const id = this.#requests.nextId();
    const job = this.#o.job?.();
    const s = new FetchStream(
      ref,
      job,
      (n) => this.#o.send(Msg.FETCH_CREDIT, id, { n }, NO_BODY),
      () => {
        // Closed before its end: the replica stops reading (nothing to do once FETCH_END came).
        if (this.#streams.delete(id)) this.#o.send(Msg.FETCH_CANCEL, id, null, NO_BODY);
      },
    );
    if (signal.aborted) {
      s.destroy(abortError(signal, ref));
      return s;
    }
    const onAbort = (): void => void s.destroy(abortError(signal, ref));
    signal.addEventListener("abort", onAbort, { once: true });
    s.once("close", () => signal.removeEventListener("abort", onAbort));
    this.#streams.set(id, s);
    const span = range ? { offset: range.start, length: range.end - range.start + 1 } : {};
    this.#o.send(Msg.FETCH, id, { ref, op: "stream", w: WORKER_STREAM_WINDOW_BYTES, ...span, ...jobOf(job) }, NO_BODY);
    return s;
  }

  #fetch(ref: string, op: Record<string, unknown>, signal: AbortSignal): Promise<{ meta: Meta; body: Buffer }> {
    const meta = { ref, ...op, ...jobOf(this.#o.job?.()) };
    return this.#requests.ask(Msg.FETCH, meta, NO_BODY, signal, () => abortError(signal, ref));
  }
}

function jobOf(job: number | undefined): { job?: number } {
  return job === undefined ? {} : { job };
}

/**
 * One stream FETCH as the worker holds it: chunks that arrived and were not read yet (at most a
 * window: the replica sends no more until credit), handed to the reader as it asks; the bytes it
 * took go back as FETCH_CREDIT by half windows.
 */
class FetchStream extends Readable {
  info: StoredObject | undefined;
  readonly opened: Promise<void>;
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #wanted = false;
  #taken = 0;
  #got = 0;
  #length = 0;
  #end: AnyServeError | null | undefined;
  #finished = false;
  #open: { resolve: () => void; reject: (err: unknown) => void } | undefined;

  constructor(
    readonly ref: string,
    readonly job: number | undefined,
    readonly credit: (n: number) => void,
    readonly cancel: () => void,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.opened = new Promise((resolve, reject) => (this.#open = { resolve, reject }));
    this.opened.catch(() => undefined);
    // An error before the reader attaches (after an await) must not be an uncaught 'error':
    // readers still get it — iterators and pipeline read `stream.errored`.
    this.on("error", () => undefined);
  }

  /** Bytes that arrived from the replica and were not read yet: within the window (a slow reader's bound). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  arrived(meta: Meta, body: Buffer): void {
    if (this.#end !== undefined || this.destroyed) return;
    if (this.info === undefined) {
      this.info = storedOf(meta, this.ref);
      this.#length = typeof meta?.length === "number" ? meta.length : this.info.size;
      this.#settleOpen();
    }
    this.#queue.push(body);
    this.#queuedBytes += body.length;
    this.#pump();
  }

  ended(err: AnyServeError | null): void {
    if (this.#end !== undefined) return;
    this.#end = err;
    if (err) {
      this.#settleOpen(err);
      this.destroy(err);
      return;
    }
    this.#settleOpen();
    this.#pump();
  }

  override _read(): void {
    this.#wanted = true;
    this.#pump();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#settleOpen(err ?? new AnyServeError("CANCELLED", `reading object ${this.ref} was stopped`));
    this.cancel();
    done(err);
  }

  /** Hands what arrived to the reader while it asks for more; the end after the last chunk. */
  #pump(): void {
    while (this.#wanted && this.#queue.length > 0) {
      const body = this.#queue.shift()!;
      this.#queuedBytes -= body.length;
      this.#got += body.length;
      this.#taken += chunkCost(body);
      if (this.#taken >= WORKER_STREAM_WINDOW_BYTES / 2) {
        this.credit(this.#taken);
        this.#taken = 0;
      }
      this.#wanted = this.push(body);
    }
    if (this.#queue.length > 0 || this.#end !== null || this.#finished) return;
    this.#finished = true;
    if (this.#got !== this.#length) {
      this.destroy(new AnyServeError("INTERNAL", `object ${this.ref}: the replica sent ${this.#got} bytes of ${this.#length}`));
      return;
    }
    this.push(null);
  }

  #settleOpen(err?: unknown): void {
    const o = this.#open;
    this.#open = undefined;
    if (err === undefined) o?.resolve();
    else o?.reject(err);
  }
}

/** The object's metadata as the replica's store answered it (its ObjectInfo, without the ref). */
function storedOf(meta: Meta, ref: string): StoredObject {
  const m = meta ?? {};
  if (typeof m.id !== "string" || typeof m.size !== "number" || typeof m.contentType !== "string" || typeof m.created !== "number") {
    throw new AnyServeError(
      "INTERNAL",
      `object ${ref}: the replica's answer carries no object info (got ${JSON.stringify(m).slice(0, 120)})`,
    );
  }
  return {
    id: m.id,
    size: m.size,
    contentType: m.contentType,
    created: m.created,
    ...(typeof m.ttl === "number" ? { ttl: m.ttl } : {}),
    ...(typeof m.owner === "string" ? { owner: m.owner } : {}),
    ...(typeof m.url === "string" ? { url: m.url } : {}),
  };
}

function abortError(signal: AbortSignal, ref: string): AnyServeError {
  const reason = signal.reason as { name?: string } | undefined;
  // The store's fetch deadline (AbortSignal.timeout) says TimeoutError, as remote.ts maps it.
  return reason?.name === "TimeoutError"
    ? new AnyServeError("DEADLINE_EXCEEDED", `reading object ${ref} through the replica did not finish in time`)
    : new AnyServeError("CANCELLED", `reading object ${ref} through the replica was cancelled`);
}
