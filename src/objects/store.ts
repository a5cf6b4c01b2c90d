/**
 * The object store: `ctx.objects` in a handler, or standalone. Objects are immutable blobs named
 * by an {@link ObjRef}; bytes stay bytes, other values are stored as JSON. A ref names its owner
 * replica, so a replica that does not share the owner's directory fetches the object from the
 * owner's endpoint, streaming.
 *
 * @example
 * ```ts
 * import { ObjectStore } from "anyserve/server";
 * const store = new ObjectStore({ dir: "/tmp/anyserve-objects", maxObjectBytes: 64 << 20 });
 * const ref = await store.create({ rows: [1, 2, 3] }, { ttl: 600 });
 * await store.getJSON(ref);                        // { rows: [1, 2, 3] }
 * const big = await store.createFromStream(fs.createReadStream("weights.bin"));
 * (await store.getStream(big)).pipe(process.stdout); // never whole in memory
 * ```
 */
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { AnyServeError } from "../errors.js";
import type { ByteRange, ObjectBackend, ObjectMeta, OpenedObject, StoredObject } from "./backends/base.js";
import { DirBackend } from "./backends/dir.js";
import { decodeValue, encodeValue, parseJson } from "./encode.js";
import { checkRange, expired, infoOf, live, positive, refOf } from "./info.js";
import { Quota } from "./quota.js";
import { OCTET_STREAM, ObjRef, checkContentType, checkId, type ObjRefLike } from "./ref.js";
import { allowListPeers, fetchFromPeer, readFromPeer, registryPeers, type PeerResolver } from "./remote.js";
import { ApiServers } from "../util/api-servers.js";
import type {
  CreateOptions,
  ObjectInfo,
  ObjectStoreApi,
  ObjectStoreOptions,
  RangeReadOptions,
  ReadOptions,
  RemoteObjects,
  StreamCreateOptions,
  StreamReadOptions,
} from "./types.js";

export type { ObjectStoreOptions } from "./types.js";

export const DEFAULT_OBJECT_DIR = "/tmp/anyserve-objects";

export class ObjectStore implements ObjectStoreApi {
  readonly backend: ObjectBackend;
  readonly maxObjectBytes: number;
  readonly maxTotalBytes: number;
  readonly token: string | undefined;
  readonly #o: ObjectStoreOptions;
  #owner: { replicaId: string; url?: string } | undefined;
  #peers: PeerResolver | undefined;
  /** How #peers was made, when it can be said in plain data (for workerConfig). */
  #peerSpec: { origins?: string[]; apiServer?: string | readonly string[] } = {};
  readonly #quota: Quota;
  #timer: NodeJS.Timeout | undefined;

  constructor(o: ObjectStoreOptions = {}) {
    this.#o = o;
    this.backend =
      o.backend ??
      new DirBackend({
        dir: o.dir ?? DEFAULT_OBJECT_DIR,
        ...(o.fileMode !== undefined ? { fileMode: o.fileMode } : {}),
        fsync: o.fsync ?? false,
      });
    this.maxObjectBytes = positive("maxObjectBytes", o.maxObjectBytes, 2 * 1024 ** 3);
    this.maxTotalBytes = positive("maxTotalBytes", o.maxTotalBytes, 10 * 1024 ** 3);
    this.#quota = new Quota(this.backend, this.maxTotalBytes);
    this.token = o.token;
    this.#owner = o.owner;
    if (Array.isArray(o.peers)) {
      this.#peers = allowListPeers(o.peers);
      this.#peerSpec = { origins: [...(o.peers as readonly string[])] };
    } else if (o.peers) {
      this.#peers = o.peers as PeerResolver;
    } else if (o.peerRegistry) {
      this.#peers = registryPeers(o.peerRegistry, undefined, this.token);
      this.#peerSpec = { apiServer: o.peerRegistry };
    }
    const every = o.sweepIntervalSeconds ?? 0;
    if (every > 0) this.#timer = setInterval(() => void this.sweep().catch(() => undefined), every * 1000).unref();
  }

  /** Where objects live (the directory). */
  get dir(): string {
    return this.backend.location;
  }

  get owner(): { replicaId: string; url?: string } | undefined {
    return this.#owner;
  }

  /**
   * Called by the replica once it listens: refs now name it, and (unless the store was given its
   * own `peers`) owners are looked up in the API server's registry.
   */
  bindReplica(
    owner: { replicaId: string; url?: string },
    o: { apiServer?: string | readonly string[] | ApiServers | undefined } = {},
  ): void {
    this.#owner = owner;
    if (!this.#peers && o.apiServer) {
      this.#peers = registryPeers(o.apiServer, undefined, this.token);
      // Workers open the store again from plain data: the URLs (each worker follows them on its own).
      this.#peerSpec = { apiServer: o.apiServer instanceof ApiServers ? [...o.apiServer.urls] : o.apiServer };
    }
  }

  /**
   * The store as plain data, for a worker thread or process to open the same store:
   * `ObjectStore.fromConfig(JSON.parse(JSON.stringify(store.workerConfig())))`. Peers given as a
   * function cannot travel; the worker then reads local objects only. No sweep timer in workers.
   */
  workerConfig(): ObjectStoreOptions {
    const o = this.#o;
    const c: ObjectStoreOptions = { dir: this.dir, maxObjectBytes: this.maxObjectBytes, maxTotalBytes: this.maxTotalBytes };
    for (const k of ["defaultTtl", "token", "fetchTimeoutMs", "cacheRemote", "staleTempSeconds", "fileMode", "fsync"] as const) {
      if (o[k] !== undefined) (c as Record<string, unknown>)[k] = o[k];
    }
    if (this.#owner) c.owner = { ...this.#owner };
    if (this.#peerSpec.origins) c.peers = [...this.#peerSpec.origins];
    if (this.#peerSpec.apiServer) c.peerRegistry = [this.#peerSpec.apiServer].flat();
    return c;
  }

  static fromConfig(config: ObjectStoreOptions): ObjectStore {
    return new ObjectStore({ ...config, sweepIntervalSeconds: 0 });
  }

  /** Stores bytes (Buffer, typed array) or a JSON value. @returns its ref */
  async create(data: unknown, options: CreateOptions = {}): Promise<ObjRef> {
    const { bytes, contentType } = encodeValue(data, options.contentType);
    return this.#write(bytes, contentType, options, bytes.length);
  }

  /** Stores a stream of bytes without holding it in memory; an error or abort from the source leaves nothing. */
  async createFromStream(source: AsyncIterable<Uint8Array> | Readable, options: StreamCreateOptions = {}): Promise<ObjRef> {
    return this.#write(source, checkContentType(options.contentType ?? OCTET_STREAM), options, options.size);
  }

  /** The object's bytes; with `range`, only those (and only those are read, from its owner too). */
  async get(ref: ObjRefLike, options: RangeReadOptions = {}): Promise<Buffer> {
    if (options.range === undefined) return (await this.#read(ref, options)).bytes;
    return this.#readRange(ref, options.range, options);
  }

  async getJSON<T = unknown>(ref: ObjRefLike, options: ReadOptions = {}): Promise<T> {
    const { bytes, info } = await this.#read(ref, options);
    return parseJson(bytes, info.id) as T;
  }

  /** Decodes by content type: JSON → value, typed array → typed array, `text/*` → string, else Buffer. */
  async getValue(ref: ObjRefLike, options: ReadOptions = {}): Promise<unknown> {
    const { bytes, info } = await this.#read(ref, options);
    return decodeValue(bytes, info.contentType, info.id);
  }

  /** The object's bytes as a stream (1 MiB chunks), from here or from its owner. */
  async getStream(ref: ObjRefLike, options: StreamReadOptions = {}): Promise<Readable> {
    const where = await this.#locate(ref, options);
    if ("local" in where) {
      try {
        checkRange(options.range, where.local.info);
      } catch (err) {
        await where.local.close();
        throw err;
      }
      return where.local.stream(options.range);
    }
    // The fetch deadline bounds opening the stream, not reading it: a large object read at the
    // caller's pace may take longer than the deadline (a stalled owner is cut by the body's idle
    // timeout, remote.ts; the caller's signal still cancels at any time).
    const opening = this.#openingSignal(options);
    try {
      // Through the remote reader (a worker process's replica), with its flow control.
      if ("remote" in where) return await where.remote.stream(where.ref.toString(), options.range, opening.signal);
      const { body } = await fetchFromPeer({
        method: "GET",
        base: where.base,
        id: where.ref.id,
        token: this.token,
        signal: opening.signal,
        range: options.range,
      });
      return body!;
    } finally {
      opening.opened();
    }
  }

  async stat(ref: ObjRefLike, options: ReadOptions = {}): Promise<ObjectInfo> {
    const where = await this.#locate(ref, { ...options, cache: false });
    if ("local" in where) {
      await where.local.close();
      return infoOf(where.local.info);
    }
    if ("remote" in where) return infoOf(await where.remote.stat(where.ref.toString(), this.#signal(options)));
    return infoOf(
      (await fetchFromPeer({ method: "HEAD", base: where.base, id: where.ref.id, token: this.token, signal: this.#signal(options) })).info,
    );
  }

  /** True when the object can be read (here or at its owner); expired objects do not exist. */
  async exists(ref: ObjRefLike, options: ReadOptions = {}): Promise<boolean> {
    try {
      await this.stat(ref, options);
      return true;
    } catch (err) {
      if (err instanceof AnyServeError && (err.code === "OBJECT_NOT_FOUND" || err.code === "OBJECT_EXPIRED")) return false;
      throw err;
    }
  }

  /** Removes the local object (or local copy); never reaches the owner. @returns false when there was none */
  async delete(ref: ObjRefLike): Promise<boolean> {
    // The quota is not lowered (the size is unknown without another read): see quota.ts.
    return this.backend.remove(ObjRef.from(ref).id);
  }

  /** Objects in this store that have not expired. */
  async list(): Promise<ObjectInfo[]> {
    const now = Date.now();
    return (await this.backend.list()).filter((o) => !expired(o, now)).map(infoOf);
  }

  /** Removes objects created `maxAgeSeconds` ago or earlier, expired ones, and dead writers' temp files. @returns objects removed */
  async cleanup(maxAgeSeconds: number): Promise<number> {
    if (!(maxAgeSeconds >= 0)) throw new AnyServeError("INVALID_PARAMETER", `cleanup: expected maxAgeSeconds >= 0, got ${maxAgeSeconds}`);
    const cutoff = Date.now() - maxAgeSeconds * 1000;
    return this.#removeWhere((o, now) => o.created <= cutoff || expired(o, now));
  }

  /** Removes every object (and dead writers' temp files). @returns objects removed */
  async clear(): Promise<number> {
    return this.#removeWhere(() => true);
  }

  /** Removes expired objects and dead writers' temp files. @returns objects removed */
  async sweep(): Promise<number> {
    return this.#removeWhere((o, now) => expired(o, now));
  }

  /**
   * What the store's directory holds now (it may be shared with other replicas): objects
   * (expired ones until the next sweep) and bytes on disk (objects and unfinished writes — what
   * counts toward `maxTotalBytes`). Scans the directory: for metrics, not for every request.
   */
  async totals(): Promise<{ objects: number; bytes: number }> {
    const [objects, bytes] = await Promise.all([this.backend.list(), this.backend.usage()]);
    return { objects: objects.length, bytes };
  }

  /** Opens a local object for the endpoint: 404 when absent, 410 when expired; never fetches. */
  async openLocal(id: string): Promise<OpenedObject> {
    return live(await this.backend.open(checkId(id)));
  }

  /** Stops the sweep timer. */
  close(): void {
    clearInterval(this.#timer);
  }

  async #write(
    source: Buffer | AsyncIterable<Uint8Array>,
    contentType: string,
    o: CreateOptions,
    size: number | undefined,
  ): Promise<ObjRef> {
    // A source that fails before the backend starts reading it must not crash the process: the
    // error is kept by the stream and thrown by its iterator, or the stream is destroyed below.
    if (source instanceof Readable) source.on("error", () => undefined);
    try {
      const id = o.key !== undefined ? checkId(o.key) : `obj-${randomUUID()}`;
      const ttl = o.ttl ?? this.#o.defaultTtl;
      if (ttl !== undefined && !(ttl > 0 && Number.isFinite(ttl)))
        throw new AnyServeError("INVALID_PARAMETER", `ttl: expected a positive number of seconds, got ${ttl}`);
      if (size !== undefined && size > this.maxObjectBytes)
        throw new AnyServeError("OBJECT_TOO_LARGE", `object ${id} is ${size} bytes: the limit is ${this.maxObjectBytes} bytes per object`);
      const meta: ObjectMeta = { id, contentType, created: Date.now() };
      if (ttl !== undefined) meta.ttl = ttl;
      if (this.#owner) meta.owner = this.#owner.replicaId;
      if (this.#owner?.url) meta.url = this.#owner.url;
      const room = await this.#quota.room(size ?? 0, () => this.sweep());
      const stored = await this.backend.write(meta, source, { maxBytes: this.maxObjectBytes, room, signal: o.signal });
      this.#quota.added(stored.size);
      return refOf(stored);
    } catch (err) {
      if (source instanceof Readable) source.destroy();
      throw err;
    }
  }

  async #removeWhere(match: (o: StoredObject, now: number) => boolean): Promise<number> {
    const now = Date.now();
    let removed = 0;
    for (const o of await this.backend.list()) {
      if (match(o, now) && (await this.backend.remove(o.id))) {
        removed++;
        this.#quota.removed(o.size);
      }
    }
    await this.backend.removeStaleTemps((this.#o.staleTempSeconds ?? 3600) * 1000);
    return removed;
  }

  async #read(ref: ObjRefLike, options: ReadOptions): Promise<{ bytes: Buffer; info: StoredObject }> {
    const where = await this.#locate(ref, options, true);
    if ("local" in where) return { info: where.local.info, bytes: await where.local.read() };
    if ("remote" in where) return where.remote.read(where.ref.toString(), this.#signal(options));
    return readFromPeer({ method: "GET", base: where.base, id: where.ref.id, token: this.token, signal: this.#signal(options) });
  }

  async #readRange(refLike: ObjRefLike, range: ByteRange, options: ReadOptions): Promise<Buffer> {
    const where = await this.#locate(refLike, options);
    if ("local" in where) {
      try {
        checkRange(range, where.local.info);
      } catch (err) {
        await where.local.close();
        throw err;
      }
      return Buffer.concat(await where.local.stream(range).toArray());
    }
    if ("remote" in where) return where.remote.readRange(where.ref.toString(), range, this.#signal(options));
    // The owner checks it against the size; what cannot be a range at all is refused before asking.
    checkRange(range, { id: where.ref.id, size: Number.MAX_SAFE_INTEGER, contentType: OCTET_STREAM, created: 0 });
    const base = { method: "GET", base: where.base, id: where.ref.id, token: this.token, signal: this.#signal(options), range } as const;
    return (await readFromPeer(base)).bytes;
  }

  /** Finds an object: here (the owner's copy, or a shared directory, or a cache), else at its owner (cached first when asked). */
  async #locate(
    refLike: ObjRefLike,
    options: ReadOptions,
    whole = false,
  ): Promise<{ local: OpenedObject } | { base: string; ref: ObjRef } | { remote: RemoteObjects; ref: ObjRef }> {
    const ref = ObjRef.from(refLike);
    const local = await this.#openLocal(ref, whole);
    if (local) return { local: live(local) };
    const remote = this.#o.remote;
    if (remote) {
      this.#foreignOwner(ref);
      return { remote, ref };
    }
    const base = await this.#peerOf(ref);
    if (!(options.cache ?? this.#o.cacheRemote)) return { base, ref };
    const signal = this.#signal(options);
    const { info, body } = await fetchFromPeer({ method: "GET", base, id: ref.id, token: this.token, signal });
    if (info.size > this.maxObjectBytes) {
      body!.destroy();
      throw new AnyServeError(
        "OBJECT_TOO_LARGE",
        `object ${ref.id} is ${info.size} bytes: too large to cache here (limit ${this.maxObjectBytes})`,
      );
    }
    const { size: _size, ...meta } = info;
    try {
      await this.backend.write(meta, body!, {
        maxBytes: this.maxObjectBytes,
        room: await this.#quota.room(info.size, () => this.sweep()),
        signal,
      });
    } catch (err) {
      body!.destroy(); // the socket goes with it
      throw err;
    }
    return { local: live(await this.backend.open(ref.id, { whole })) };
  }

  async #openLocal(ref: ObjRef, whole: boolean): Promise<OpenedObject | undefined> {
    let o: OpenedObject;
    try {
      o = await this.backend.open(ref.id, { whole });
    } catch (err) {
      if (err instanceof AnyServeError && err.code === "OBJECT_NOT_FOUND") return undefined;
      throw err;
    }
    // Same key, different owner: another object, not a copy of this one.
    if (ref.owner !== undefined && o.info.owner !== undefined && o.info.owner !== ref.owner) {
      await o.close();
      return undefined;
    }
    return o;
  }

  /** The base URL of a ref's owner; 404 when the ref is ours (or names no owner), 400 when the owner is not a trusted peer. */
  async #peerOf(ref: ObjRef): Promise<string> {
    const owner = this.#foreignOwner(ref);
    const base = this.#peers ? await this.#peers(owner, ref.url) : undefined;
    if (!base) {
      throw new AnyServeError(
        "OBJECT_REF_INVALID",
        `object ${ref.id} is owned by '${ref.owner}', which is not a known peer of this store (a replica learns peers from its API server; a standalone store needs 'peers')`,
      );
    }
    return base;
  }

  /** The owner of an object not found here; 404 when the ref is ours (or names no owner). */
  #foreignOwner(ref: ObjRef): string {
    if (ref.owner === undefined || ref.owner === this.#owner?.replicaId) {
      throw new AnyServeError("OBJECT_NOT_FOUND", `object ${ref.id} is not in the store at ${this.dir}`);
    }
    return ref.owner;
  }

  /** The caller's signal with the fetch deadline until `opened()` (a stream's: see getStream). */
  #openingSignal(o: ReadOptions): { signal: AbortSignal; opened: () => void } {
    const deadline = new AbortController();
    const ms = o.timeoutMs ?? this.#o.fetchTimeoutMs ?? 60_000;
    // Named as AbortSignal.timeout's reason is, so the readers map it to DEADLINE_EXCEEDED alike.
    const timer = setTimeout(() => deadline.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")), ms);
    timer.unref();
    return {
      signal: o.signal ? AbortSignal.any([o.signal, deadline.signal]) : deadline.signal,
      opened: () => clearTimeout(timer),
    };
  }

  #signal(o: ReadOptions): AbortSignal {
    const deadline = AbortSignal.timeout(o.timeoutMs ?? this.#o.fetchTimeoutMs ?? 60_000);
    return o.signal ? AbortSignal.any([o.signal, deadline]) : deadline;
  }
}
