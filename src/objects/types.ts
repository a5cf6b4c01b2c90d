/** The object store's public surface: what `ctx.objects` offers a handler. */
import type { Readable } from "node:stream";
import type { ByteRange, ObjectBackend, StoredObject } from "./backends/base.js";
import type { ObjRef, ObjRefLike } from "./ref.js";
import type { PeerResolver } from "./remote.js";

export interface CreateOptions {
  /** The id to store under (`^[A-Za-z0-9_-]{1,128}$`); an object with that id is replaced. Default: `obj-<uuid>`. */
  key?: string;
  /** Seconds until the object expires (reads then answer 410 `OBJECT_EXPIRED`). Default: the store's `defaultTtl`, else never. */
  ttl?: number;
  /** Default: `application/octet-stream` for bytes, `application/json` for other values. */
  contentType?: string;
  /** Aborts the write; nothing is kept. */
  signal?: AbortSignal;
}

export interface StreamCreateOptions extends CreateOptions {
  /** The size if known: refused up front (413/507) when over a limit, instead of after writing. */
  size?: number;
}

export interface ReadOptions {
  /** Aborts a fetch from the owner (e.g. `ctx.signal`). */
  signal?: AbortSignal;
  /**
   * Milliseconds a fetch from the owner may take in all (default: the store's `fetchTimeoutMs`);
   * for `getStream`, until the stream opens — reading it then takes as long as the reader does.
   */
  timeoutMs?: number;
  /** Keep a local copy of an object fetched from its owner (default: the store's `cacheRemote`). */
  cache?: boolean;
}

export interface RangeReadOptions extends ReadOptions {
  /** Inclusive byte range of the object: only those bytes are read (from the owner too). */
  range?: ByteRange;
}

export type StreamReadOptions = RangeReadOptions;

/** What `stat` and `list` tell about an object. */
export interface ObjectInfo {
  ref: ObjRef;
  id: string;
  size: number;
  contentType: string;
  /** Epoch milliseconds. */
  created: number;
  /** Seconds, when the object expires. */
  ttl?: number;
  /** Epoch milliseconds, when the object expires. */
  expiresAt?: number;
  owner?: string;
  url?: string;
}

/** The object store as handlers see it (`ctx.objects`). */
export interface ObjectStoreApi {
  create(data: unknown, options?: CreateOptions): Promise<ObjRef>;
  createFromStream(source: AsyncIterable<Uint8Array> | Readable, options?: StreamCreateOptions): Promise<ObjRef>;
  get(ref: ObjRefLike, options?: RangeReadOptions): Promise<Buffer>;
  getJSON<T = unknown>(ref: ObjRefLike, options?: ReadOptions): Promise<T>;
  getValue(ref: ObjRefLike, options?: ReadOptions): Promise<unknown>;
  getStream(ref: ObjRefLike, options?: StreamReadOptions): Promise<Readable>;
  stat(ref: ObjRefLike, options?: ReadOptions): Promise<ObjectInfo>;
  exists(ref: ObjRefLike, options?: ReadOptions): Promise<boolean>;
  delete(ref: ObjRefLike): Promise<boolean>;
  list(): Promise<ObjectInfo[]>;
  cleanup(maxAgeSeconds: number): Promise<number>;
  clear(): Promise<number>;
}

export interface ObjectStoreOptions {
  /** Directory of the default backend (default `/tmp/anyserve-objects`). */
  dir?: string;
  /** Another backend instead of the directory one. */
  backend?: ObjectBackend;
  /** Largest object in bytes (default 2 GiB) → 413 `OBJECT_TOO_LARGE`. */
  maxObjectBytes?: number;
  /** Cap on all objects plus unfinished writes, in bytes (default 10 GiB) → 507 `OBJECT_STORE_FULL`. */
  maxTotalBytes?: number;
  /** TTL in seconds for objects created without one (default: none). */
  defaultTtl?: number;
  /** The replica this store belongs to; its refs name it. Usually set by the replica with {@link ObjectStore.bindReplica}. */
  owner?: { replicaId: string; url?: string };
  /** Bearer token sent to owners' endpoints (and required by this replica's endpoint). */
  token?: string;
  /** Which owners may be fetched from: a resolver, or the origins allowed. Default: none (refs of other owners are refused). */
  peers?: PeerResolver | readonly string[];
  /** Look owners up in this API server's registry (what a replica does; see `bindReplica`); several: the next when one is gone. */
  peerRegistry?: string | readonly string[];
  /**
   * Reads objects owned by others through someone else instead of fetching them from their owners
   * (`peers`, `peerRegistry`, `cacheRemote` are then unused): a worker process, which holds none of
   * the credentials a fetch needs, asks its replica (execution/replica-objects.ts).
   */
  remote?: RemoteObjects;
  /** Total time for one fetch from an owner (default 60 s). */
  fetchTimeoutMs?: number;
  /** Keep local copies of fetched objects (default false). */
  cacheRemote?: boolean;
  /** Temp files untouched this long are removed even if their writer may be alive (default 3600 s). */
  staleTempSeconds?: number;
  /** Remove expired objects and dead writers' temp files this often (default 0: only on `sweep`/`cleanup`/when full). */
  sweepIntervalSeconds?: number;
  /** Directory backend: file mode (default 0o600) and fsync before publishing (default false). */
  fileMode?: number;
  fsync?: boolean;
}

/** Where a store reads objects it does not hold (see {@link ObjectStoreOptions.remote}). */
export interface RemoteObjects {
  /** The object's metadata; OBJECT_NOT_FOUND / OBJECT_EXPIRED as the owner says. */
  stat(ref: string, signal: AbortSignal): Promise<StoredObject>;
  /** The whole object and its metadata. */
  read(ref: string, signal: AbortSignal): Promise<{ info: StoredObject; bytes: Buffer }>;
  /** Only the bytes of `range` (416 `OBJECT_RANGE_INVALID` outside the object). */
  readRange(ref: string, range: ByteRange, signal: AbortSignal): Promise<Buffer>;
  /** The object's bytes (or `range`'s) as a stream with flow control: what is not read is not fetched. */
  stream(ref: string, range: ByteRange | undefined, signal: AbortSignal): Promise<Readable>;
}
