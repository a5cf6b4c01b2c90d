/**
 * The seam between the object store (ids, JSON, TTL, quota, peers) and where bytes live. A backend
 * only stores and finds whole objects by a validated id; it guarantees that a reader sees a whole
 * object or none, and that a crashed writer leaves nothing readable.
 *
 * One file per backend: `dir.ts` (a directory, possibly shared between replicas) is the first.
 */
import type { Readable } from "node:stream";

/** What the store records beside an object's bytes. */
export interface ObjectMeta {
  id: string;
  contentType: string;
  /** Epoch milliseconds. */
  created: number;
  /** Seconds after `created` at which the object expires; absent = never. */
  ttl?: number;
  /** Replica id of the owner (kept by cached copies, so they name the original owner). */
  owner?: string;
  /** The owner's REST base URL. */
  url?: string;
}

export interface StoredObject extends ObjectMeta {
  size: number;
}

export interface WriteLimits {
  /** Largest object, in bytes: over it → 413 `OBJECT_TOO_LARGE`. */
  maxBytes: number;
  /** Bytes left under the store's total cap: over it → 507 `OBJECT_STORE_FULL`. */
  room: number;
  /** Aborts the write; nothing is kept. */
  signal?: AbortSignal | undefined;
}

/** An inclusive byte range of the object's data. */
export interface ByteRange {
  start: number;
  end: number;
}

/** An object opened for reading. `read` and `stream` close it when done; `close` is idempotent. */
export interface OpenedObject {
  readonly info: StoredObject;
  read(): Promise<Buffer>;
  stream(range?: ByteRange): Readable;
  close(): Promise<void>;
}

export interface ObjectBackend {
  /** Backend name, for messages and docs ("dir"). */
  readonly kind: string;
  /** Where it stores (the directory), for messages. */
  readonly location: string;
  /** Stores a whole object under `meta.id`, replacing any object with that id atomically. */
  write(meta: ObjectMeta, source: Buffer | AsyncIterable<Uint8Array>, limits: WriteLimits): Promise<StoredObject>;
  /**
   * Opens an object; 404 `OBJECT_NOT_FOUND`, or 400 `OBJECT_REF_INVALID` for anything that is not
   * one of ours. `whole`: the caller will `read()` all of it, so the backend may read it at once.
   */
  open(id: string, options?: { whole?: boolean }): Promise<OpenedObject>;
  /** Removes an object; false when there was none. */
  remove(id: string): Promise<boolean>;
  /** Every readable object (entries that are not ours are skipped). */
  list(): Promise<StoredObject[]>;
  /** Bytes used: objects plus unfinished writes. */
  usage(): Promise<number>;
  /** Removes temporary files whose writer died or that were untouched for `staleMs`; returns how many. */
  removeStaleTemps(staleMs: number): Promise<number>;
}
