/**
 * The directory backend's file format and names.
 *
 * Object file `<id>.obj`: `ANYSOBJ1` (8 bytes) · header length (u32 BE) · header JSON
 * `{v:1, id, contentType, created, ttl?, owner?, url?}` · the object's bytes.
 * Temp file `.tmp.<pid>.<host tag>.<random>.<id>`: never a valid object name (ids have no dots),
 * and it says which process on which machine is writing it, so a dead writer's file is known.
 */
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { AnyServeError } from "../../errors.js";
import { checkContentType, checkId, checkOwner, checkOwnerUrl } from "../ref.js";
import type { ObjectMeta } from "./base.js";

const MAGIC = Buffer.from("ANYSOBJ1", "latin1");
const PREFIX_LENGTH = MAGIC.length + 4;
const MAX_HEADER = 16 * 1024;
/** What `open` reads first: the prefix, the header and (for small objects) all the data, in one syscall. */
export const HEAD_READ = 4096;

export const OBJECT_NAME = /^([A-Za-z0-9_-]{1,128})\.obj$/;
export const TEMP_NAME = /^\.tmp\.(\d{1,10})\.([0-9a-f]{8})\.[0-9a-f]{12}\.[A-Za-z0-9_-]{1,128}$/;
/** Temp names carry a host tag so a pid is only judged dead on the machine that owns it. */
export const HOST_TAG = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);

export function encodeHeader(meta: ObjectMeta): Buffer {
  const json = Buffer.from(JSON.stringify({ v: 1, ...meta }));
  if (json.length > MAX_HEADER)
    throw new AnyServeError("INTERNAL", `object ${meta.id}: header is ${json.length} bytes, over ${MAX_HEADER}`);
  const prefix = Buffer.alloc(PREFIX_LENGTH);
  MAGIC.copy(prefix);
  prefix.writeUInt32BE(json.length, MAGIC.length);
  return Buffer.concat([prefix, json]);
}

/**
 * Parses the start of an object file: the metadata and where the data starts, `{need}` when the
 * header is longer than `head`, or the reason it is not one of ours.
 */
export function parseHead(head: Buffer): { meta: ObjectMeta; offset: number } | { need: number } | string {
  if (head.length < PREFIX_LENGTH || !head.subarray(0, MAGIC.length).equals(MAGIC)) return "is not an anyserve object";
  const length = head.readUInt32BE(MAGIC.length);
  if (length > MAX_HEADER) return "has a corrupt header";
  if (PREFIX_LENGTH + length > head.length) return { need: PREFIX_LENGTH + length };
  const meta = decodeHeader(head.subarray(PREFIX_LENGTH, PREFIX_LENGTH + length));
  return meta ? { meta, offset: PREFIX_LENGTH + length } : "has a corrupt header";
}

function decodeHeader(raw: Buffer): ObjectMeta | undefined {
  try {
    const h = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    if (h === null || typeof h !== "object" || h.v !== 1 || typeof h.created !== "number") return undefined;
    // Validated like a ref: these values end up in response headers and refs.
    const meta: ObjectMeta = { id: checkId(h.id), contentType: checkContentType(h.contentType), created: h.created };
    if (typeof h.ttl === "number") meta.ttl = h.ttl;
    if (h.owner !== undefined) meta.owner = checkOwner(h.owner);
    if (h.url !== undefined) meta.url = checkOwnerUrl(h.url);
    return meta;
  } catch {
    return undefined;
  }
}

/** Writes every byte of `parts`: one writev when the kernel takes it all (as it does for files), else part by part. */
export async function writeAll(fh: FileHandle, parts: Uint8Array[]): Promise<void> {
  let skip = parts.length > 1 ? (await fh.writev(parts)).bytesWritten : 0;
  for (const part of parts) {
    const start = Math.min(skip, part.byteLength);
    skip -= start;
    for (let off = start; off < part.byteLength; ) off += (await fh.write(part, off, part.byteLength - off)).bytesWritten;
  }
}

/** Reads exactly `length` bytes at `position` into `into` (or a new buffer); undefined when the file ends first. */
export async function readExactly(
  fh: FileHandle,
  length: number,
  position: number,
  into = Buffer.allocUnsafe(length),
  at = 0,
): Promise<Buffer | undefined> {
  for (let off = 0; off < length; ) {
    const { bytesRead } = await fh.read(into, at + off, Math.min(length - off, 1 << 30), position + off);
    if (bytesRead === 0) return undefined;
    off += bytesRead;
  }
  return into;
}
