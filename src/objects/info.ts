/** Small pure helpers of the store: expiry, ranges, and turning stored metadata into refs and infos. */
import { AnyServeError } from "../errors.js";
import type { ByteRange, OpenedObject, StoredObject } from "./backends/base.js";
import { ObjRef } from "./ref.js";
import type { ObjectInfo } from "./types.js";

export function expired(o: StoredObject, now: number): boolean {
  return o.ttl !== undefined && now >= o.created + o.ttl * 1000;
}

export function live(o: OpenedObject): OpenedObject {
  if (!expired(o.info, Date.now())) return o;
  void o.close();
  throw new AnyServeError(
    "OBJECT_EXPIRED",
    `object ${o.info.id} expired at ${new Date(o.info.created + o.info.ttl! * 1000).toISOString()}`,
  );
}

/** Refuses a range that is not whole bytes within the object: 416 `OBJECT_RANGE_INVALID` naming its offset, length and the size. */
export function checkRange(range: ByteRange | undefined, info: StoredObject): void {
  if (
    range &&
    !(
      Number.isSafeInteger(range.start) &&
      Number.isSafeInteger(range.end) &&
      range.start >= 0 &&
      range.start <= range.end &&
      range.end < info.size
    )
  ) {
    throw rangeError(range.start, range.end - range.start + 1, info);
  }
}

/**
 * The inclusive range of `length` bytes at `offset` (`length` undefined: to the end), as a worker
 * asks for it (FETCH op `range` or `stream`), checked as {@link checkRange} checks local reads.
 */
export function spanRange(offset: unknown, length: unknown, info: StoredObject): ByteRange {
  const o = offset ?? 0;
  const n = length ?? info.size - Number(o);
  if (
    !Number.isSafeInteger(o) ||
    !Number.isSafeInteger(n) ||
    (o as number) < 0 ||
    (n as number) < 1 ||
    (o as number) + (n as number) > info.size
  ) {
    throw rangeError(o, n, info);
  }
  return { start: o as number, end: (o as number) + (n as number) - 1 };
}

function rangeError(offset: unknown, length: unknown, info: StoredObject): AnyServeError {
  const show = (v: unknown): string => (typeof v === "number" ? String(v) : JSON.stringify(v ?? null).slice(0, 40));
  return new AnyServeError(
    "OBJECT_RANGE_INVALID",
    `range (offset ${show(offset)}, length ${show(length)}) is outside object ${info.id} (${info.size} bytes): expected offset >= 0, length >= 1 and offset + length <= ${info.size}`,
    { size: info.size },
  );
}

export function refOf(o: StoredObject): ObjRef {
  return new ObjRef({
    id: o.id,
    size: o.size,
    contentType: o.contentType,
    ...(o.owner !== undefined ? { owner: o.owner } : {}),
    ...(o.url !== undefined ? { url: o.url } : {}),
  });
}

export function infoOf(o: StoredObject): ObjectInfo {
  const info: ObjectInfo = { ref: refOf(o), id: o.id, size: o.size, contentType: o.contentType, created: o.created };
  if (o.ttl !== undefined) {
    info.ttl = o.ttl;
    info.expiresAt = o.created + o.ttl * 1000;
  }
  if (o.owner !== undefined) info.owner = o.owner;
  if (o.url !== undefined) info.url = o.url;
  return info;
}

export function positive(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`ObjectStore: ${name} must be a positive integer number of bytes, got ${v}`);
  return v;
}
