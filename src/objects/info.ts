/** Small pure helpers of the store: expiry, ranges, and turning stored metadata into refs and infos. */
import { AnyServeError } from "../errors.js";
import type { OpenedObject, StoredObject } from "./backends/base.js";
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

export function checkRange(range: { start: number; end: number } | undefined, info: StoredObject): void {
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
    throw new AnyServeError("OBJECT_RANGE_INVALID", `range ${range.start}-${range.end} is outside object ${info.id} (${info.size} bytes)`);
  }
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
