/**
 * ObjRef: the name of a stored object, as a string that can travel in any request (a BYTES input,
 * a request parameter `object_ref`) and parse back. It carries the object's id, size and content
 * type, and the replica that owns it with that replica's object endpoint, so a reader on another
 * machine knows where to fetch it.
 *
 * String form (every value percent-encoded):
 * `obj:<id>?size=<bytes>&type=<content type>[&owner=<replica id>&url=<owner's REST base URL>]`;
 * a ref whose size is not known (made from a bare id) leaves `size=` out, so a size in a ref's
 * text is always a byte count.
 *
 * An id is `^[A-Za-z0-9_-]{1,128}$`: it has no `.`, `/`, `\`, `%` or NUL, so no spelling of an id
 * can name a file outside the store. Parsing is strict; anything else is 400 `OBJECT_REF_INVALID`.
 *
 * @example
 * ```ts
 * const ref = await ctx.objects.create({ tokens: [1, 2, 3] });
 * const text = ref.toString();        // "obj:obj-5f1c…?size=18&type=application%2Fjson&owner=replica-a&url=…"
 * const back = ObjRef.parse(text);    // equal to ref
 * back.describe();                    // "object obj-5f1c… (18 B, application/json) owned by replica-a"
 * ```
 */
import { AnyServeError } from "../errors.js";
import { OBJREF_BRAND } from "../protocol/value-convert.js";

/** Object ids: the only names the store ever turns into a file name. */
export const OBJECT_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
/** Replica ids, as the registry accepts them. */
const OWNER_PATTERN = /^[\w.-]{1,128}$/;
/** `type/subtype` with optional `; k=v` parameters, printable ASCII only (it becomes a header). */
const CONTENT_TYPE_PATTERN = /^[\w.+-]{1,64}\/[\w.+-]{1,64}(?:; ?[\w.+-]{1,64}=[\w.+-]{1,64}){0,4}$/;
const MAX_REF_LENGTH = 4096;
const PREFIX = "obj:";

export const OCTET_STREAM = "application/octet-stream";
export const JSON_TYPE = "application/json";

/** The plain-object form of an ObjRef (what `toJSON` gives and `ObjRef.from` takes). */
export interface ObjRefData {
  id: string;
  size: number;
  contentType: string;
  /** Replica id of the owner; absent for a store with no replica. */
  owner?: string;
  /** The owner's REST base URL (`http://host:port`); objects are at `<url>/objects/<id>`. */
  url?: string;
}

/** Anything `get`/`stat`/`delete` accept as a ref: an ObjRef, its string, its plain or JSON form, a bare id, or a BYTES element holding one of those. */
export type ObjRefLike = ObjRef | ObjRefData | string | Uint8Array;

export class ObjRef implements ObjRefData {
  /** Lets the value encoder send a ref as its string form (see protocol/value-convert.ts). */
  readonly [OBJREF_BRAND] = true;
  readonly id: string;
  readonly size: number;
  readonly contentType: string;
  readonly owner?: string;
  readonly url?: string;

  constructor(data: ObjRefData) {
    this.id = checkId(data.id);
    if (!Number.isSafeInteger(data.size) || data.size < -1)
      invalid(`size: expected a non-negative integer (or -1: unknown), got ${JSON.stringify(data.size)}`);
    this.size = data.size;
    this.contentType = checkContentType(data.contentType);
    if (data.owner !== undefined) {
      this.owner = checkOwner(data.owner);
    }
    if (data.url !== undefined) this.url = checkOwnerUrl(data.url);
  }

  /** The key the object is stored under (the id; a custom `key` given to `create` becomes the id). */
  get key(): string {
    return this.id;
  }

  /** True when the object holds JSON (`getJSON` applies). */
  get isJSON(): boolean {
    return this.contentType === JSON_TYPE || this.contentType.startsWith(`${JSON_TYPE};`);
  }

  toString(): string {
    let s = `${PREFIX}${this.id}?${this.size < 0 ? "" : `size=${this.size}&`}type=${encodeURIComponent(this.contentType)}`;
    if (this.owner !== undefined) s += `&owner=${encodeURIComponent(this.owner)}`;
    if (this.url !== undefined) s += `&url=${encodeURIComponent(this.url)}`;
    return s;
  }

  toJSON(): ObjRefData {
    const d: ObjRefData = { id: this.id, size: this.size, contentType: this.contentType };
    if (this.owner !== undefined) d.owner = this.owner;
    if (this.url !== undefined) d.url = this.url;
    return d;
  }

  /** A readable one-liner for logs: key, size, type and owner. */
  describe(): string {
    const size = this.size < 0 ? "size unknown" : formatBytes(this.size);
    return `object ${this.id} (${size}, ${this.contentType})${this.owner ? ` owned by ${this.owner}` : ""}`;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `ObjRef<${this.describe()}>`;
  }

  /** Parses the string form; 400 `OBJECT_REF_INVALID` for anything else. */
  static parse(text: string): ObjRef {
    if (typeof text !== "string") invalid(`expected a string, got ${typeof text}`);
    if (text.length > MAX_REF_LENGTH) invalid(`ref is ${text.length} characters: at most ${MAX_REF_LENGTH}`);
    if (!text.startsWith(PREFIX)) invalid(`expected 'obj:<id>?size=…&type=…', got ${quote(text)}`);
    const q = text.indexOf("?");
    if (q < 0) invalid(`ref ${quote(text)} has no '?size=…&type=…'`);
    const id = checkId(text.slice(PREFIX.length, q));
    const fields = new Map<string, string>();
    for (const part of text.slice(q + 1).split("&")) {
      const eq = part.indexOf("=");
      const name = eq < 0 ? part : part.slice(0, eq);
      if (!["size", "type", "owner", "url"].includes(name)) invalid(`unknown field ${quote(name)} in ref`);
      if (fields.has(name)) invalid(`field '${name}' appears twice in ref`);
      let value: string;
      try {
        value = decodeURIComponent(part.slice(eq + 1));
      } catch {
        invalid(`field '${name}' is not valid percent-encoding`);
      }
      fields.set(name, value);
    }
    // No `size` is "not known"; a size given is a byte count (a negative one is malformed, not unknown).
    const size = fields.get("size");
    if (size !== undefined && !/^\d{1,16}$/.test(size))
      invalid(`size: expected a byte count (a non-negative integer; leave it out when unknown), got ${quote(size)}`);
    const type = fields.get("type");
    if (type === undefined) invalid("type: missing");
    const data: ObjRefData = { id, size: size === undefined ? -1 : Number(size), contentType: type };
    const owner = fields.get("owner");
    const url = fields.get("url");
    if (owner !== undefined) data.owner = owner;
    if (url !== undefined) data.url = url;
    return new ObjRef(data);
  }

  /** Like {@link parse} but answers undefined instead of throwing. */
  static tryParse(text: string): ObjRef | undefined {
    try {
      return ObjRef.parse(text);
    } catch {
      return undefined;
    }
  }

  /**
   * Accepts every form a ref travels in: an ObjRef, its string, its plain object (or that object as
   * JSON text), a bare id (a local object, size unknown), or the bytes of one of those.
   */
  static from(value: ObjRefLike): ObjRef {
    if (value instanceof ObjRef) return value;
    if (value instanceof Uint8Array) return ObjRef.from(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("utf8"));
    if (typeof value === "string") {
      if (value.startsWith(PREFIX)) return ObjRef.parse(value);
      if (value.startsWith("{")) {
        if (value.length > MAX_REF_LENGTH) invalid(`ref is ${value.length} characters: at most ${MAX_REF_LENGTH}`);
        let parsed: unknown;
        try {
          parsed = JSON.parse(value);
        } catch {
          invalid(`ref ${quote(value)} is not valid JSON`);
        }
        return ObjRef.from(parsed as ObjRefData);
      }
      return new ObjRef({ id: checkId(value), size: -1, contentType: OCTET_STREAM });
    }
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const d = value as Partial<ObjRefData>;
      return new ObjRef({
        id: d.id as string,
        size: d.size ?? -1,
        contentType: d.contentType ?? OCTET_STREAM,
        ...(d.owner !== undefined ? { owner: d.owner } : {}),
        ...(d.url !== undefined ? { url: d.url } : {}),
      });
    }
    invalid(`expected an ObjRef, its string or its JSON form, got ${value === null ? "null" : typeof value}`);
  }
}

/** Checks an object id; the message never echoes more than a short, escaped prefix of it. */
export function checkId(id: unknown): string {
  if (typeof id !== "string" || !OBJECT_ID_PATTERN.test(id)) {
    invalid(`object id: expected 1-128 characters of [A-Za-z0-9_-], got ${quote(id ?? null)}`);
  }
  return id;
}

export function checkOwner(owner: unknown): string {
  if (typeof owner !== "string" || !OWNER_PATTERN.test(owner))
    invalid(`owner: expected a replica id of 1-128 [A-Za-z0-9_.-], got ${quote(owner)}`);
  return owner;
}

export function checkContentType(type: unknown): string {
  if (typeof type !== "string" || !CONTENT_TYPE_PATTERN.test(type)) {
    invalid(`content type: expected 'type/subtype' (ASCII, optional '; k=v' parameters), got ${quote(type ?? null)}`);
  }
  return type;
}

/** An owner's base URL: http(s), host and port only — no credentials, path, query or fragment. */
export function checkOwnerUrl(text: unknown): string {
  let u: URL | undefined;
  try {
    if (typeof text === "string" && text.length <= 512) u = new URL(text);
  } catch {
    u = undefined;
  }
  if (
    !u ||
    (u.protocol !== "http:" && u.protocol !== "https:") ||
    u.username ||
    u.password ||
    (u.pathname !== "/" && u.pathname !== "") ||
    u.search ||
    u.hash
  ) {
    invalid(`owner url: expected http(s)://host:port, got ${quote(text ?? null)}`);
  }
  return u.origin;
}

function invalid(message: string): never {
  throw new AnyServeError("OBJECT_REF_INVALID", message);
}

function quote(v: unknown): string {
  return (JSON.stringify(v) ?? String(v)).slice(0, 80);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
