/**
 * The meta part of a REQUEST frame: an IncomingCall without its body and signal. Both ends use
 * these functions ({@link callMeta}, {@link readCallMeta}, {@link fromFrameMeta}, {@link answerMeta},
 * {@link answerOf}), so the gateway and the replica cannot disagree on a field.
 *
 * The gateway and the SDK's direct path write it in binary ({@link callMeta}): parsing a JSON meta
 * and writing it cost ~1.4 µs and ~0.8 µs per request (a tenth of the replica's whole share), the
 * binary form a fraction of that. The replica also reads a JSON meta (any first byte but 0x01), the
 * form earlier versions wrote, so a client in any language can call it with a JSON object.
 * Both read back as the same record, in short keys:
 *
 * | key | meaning |
 * |---|---|
 * | k | kind: infer, stream, meta (model metadata), health (the gateway's readiness probe) |
 * | q | capability query |
 * | ct, hl | body Content-Type, Inference-Header-Content-Length |
 * | f | answer wire format: json or protobuf |
 * | to | caller's remaining time (ms) |
 * | rid | request id |
 * | d, tr | delegation depth, replica ids tried |
 * | m | model route {name, version} |
 * | w | a stream's flow-control window in bytes (frames.ts `STREAM_WINDOW_BYTES`); absent: no flow control |
 *
 * Binary layout, little-endian; `str` is a u32 byte length then UTF-8:
 * ```
 * u8  0x01          binary call meta, this layout
 * u8  kind          0 infer, 1 stream, 2 meta, 3 health
 * u8  format        0 json, 1 protobuf
 * u8  fields        which optional fields follow: 1 ct, 2 hl, 4 d, 8 tr, 16 m, 32 m.version, 64 w
 * f64 to            remaining time in ms; negative or NaN: none given
 * str q             the query as JSON
 * str rid
 * [str ct] [f64 hl] [f64 d] [str tr as a JSON array] [str m.name] [str m.version] [f64 w]
 * ```
 * A stream's REQUEST always carries `w` ({@link callMeta} writes {@link STREAM_WINDOW_BYTES}): the
 * replica then sends at most a window ahead of the CREDIT frames the caller returns.
 *
 * Answers: RESPONSE meta `{ct, hl?}` on success (no meta at all for a plain `application/json`
 * answer: the commonest one then costs no JSON either way), `{code, error}` on failure; streams send
 * CHUNK frames then END with `{}` or `{code, error}`.
 */
import { AnyServeError, isErrorCode } from "../errors.js";
import type { IncomingCall } from "../protocol/call.js";
import { normalizeCapability } from "../protocol/capability.js";
import type { EncodedBody } from "../protocol/types.js";
import type { CancelSignal } from "../util/cancel.js";
import { FrameProtocolError, readJsonMeta, STREAM_WINDOW_BYTES, type FrameMeta } from "./frames.js";

export type FrameKind = "infer" | "stream" | "meta" | "health";

/** First byte of a binary call meta (no JSON text starts with it). */
const BINARY_CALL_META = 0x01;
const KINDS: readonly FrameKind[] = ["infer", "stream", "meta", "health"];
const KIND_CODE: Readonly<Record<FrameKind, number>> = { infer: 0, stream: 1, meta: 2, health: 3 };
const HAS_CT = 1;
const HAS_HL = 2;
const HAS_DEPTH = 4;
const HAS_TRIED = 8;
const HAS_MODEL = 16;
const HAS_MODEL_VERSION = 32;
const HAS_WINDOW = 64;
/** Marker, kind, format, fields, timeout, and the lengths of the query and the request id. */
const FIXED_BYTES = 4 + 8 + 4 + 4;

/**
 * The binary meta of a REQUEST frame for `call`. `query` is `call.query` as JSON bytes when the
 * caller has them already (the gateway's route keeps them).
 */
export function callMeta(call: IncomingCall, kind: FrameKind, query: Buffer = Buffer.from(JSON.stringify(call.query))): Buffer {
  const rid = call.requestId;
  const ct = call.contentType;
  const tried = call.tried !== undefined && call.tried.length > 0 ? JSON.stringify(call.tried) : undefined;
  const model = call.model;
  let fields = 0;
  let size = FIXED_BYTES + query.length + utf8Length(rid);
  if (ct !== undefined) {
    fields |= HAS_CT;
    size += 4 + utf8Length(ct);
  }
  if (call.headerLength !== undefined) {
    fields |= HAS_HL;
    size += 8;
  }
  if (call.depth !== undefined) {
    fields |= HAS_DEPTH;
    size += 8;
  }
  if (tried !== undefined) {
    fields |= HAS_TRIED;
    size += 4 + utf8Length(tried);
  }
  if (model !== undefined) {
    fields |= HAS_MODEL;
    size += 4 + utf8Length(model.name);
    if (model.version !== undefined) {
      fields |= HAS_MODEL_VERSION;
      size += 4 + utf8Length(model.version);
    }
  }
  if (kind === "stream") {
    fields |= HAS_WINDOW;
    size += 8;
  }
  const b = Buffer.allocUnsafe(size);
  b[0] = BINARY_CALL_META;
  b[1] = KIND_CODE[kind];
  b[2] = call.format === "protobuf" ? 1 : 0;
  b[3] = fields;
  b.writeDoubleLE(call.timeoutMs, 4);
  b.writeUInt32LE(query.length, 12);
  query.copy(b, 16);
  let off = putString(b, 16 + query.length, rid);
  if (ct !== undefined) off = putString(b, off, ct);
  if (call.headerLength !== undefined) off = b.writeDoubleLE(call.headerLength, off);
  if (call.depth !== undefined) off = b.writeDoubleLE(call.depth, off);
  if (tried !== undefined) off = putString(b, off, tried);
  if (model !== undefined) {
    off = putString(b, off, model.name);
    if (model.version !== undefined) off = putString(b, off, model.version);
  }
  if (kind === "stream") b.writeDoubleLE(STREAM_WINDOW_BYTES, off);
  return b;
}

/**
 * A string's UTF-8 length. Request ids and content types are short and ASCII: a loop here costs
 * a fraction of a call into `Buffer.byteLength` (as {@link putString}'s loop does of `buf.write`).
 */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s);
  return s.length;
}

/** Writes `s` as a length-prefixed field at `off`; returns the offset after it. */
function putString(b: Buffer, off: number, s: string): number {
  let n = s.length;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) break;
    b[off + 4 + i] = c;
  }
  if (i < n) n = b.write(s, off + 4);
  b.writeUInt32LE(n, off);
  return off + 4 + n;
}

/**
 * Reads a REQUEST meta, binary (first byte 0x01) or else JSON, into the record {@link fromFrameMeta}
 * takes: the replica's frame server decodes every REQUEST frame with it. Throws FrameProtocolError
 * for bytes that are neither (the connection is then closed); what the fields mean is checked per
 * request later.
 */
export function readCallMeta(buf: Buffer, start: number, end: number, id: number): FrameMeta | null {
  return buf[start] === BINARY_CALL_META ? new CallMetaReader(buf, start, end, id).read() : readJsonMeta(buf, start, end, id);
}

/**
 * A field whose bytes repeat from request to request (the query, the content type): kept with
 * what they decoded to, so a repeat costs a byte comparison instead of a string and a parse.
 */
interface Remembered {
  bytes: Buffer;
  value: unknown;
}

/** Parsed queries by their bytes (as latin1: one char per byte), and the last one seen. */
const queries = new Map<string, unknown>();
const MAX_QUERIES = 256;
/** Longer queries are parsed each time: the cache stays under 256 KB whoever sends what. */
const MAX_QUERY_BYTES_CACHED = 1024;
let lastQuery: Remembered = { bytes: Buffer.alloc(0), value: undefined };
let lastContentType: Remembered = { bytes: Buffer.alloc(0), value: undefined };

class CallMetaReader {
  #off: number;
  constructor(
    private readonly buf: Buffer,
    private readonly start: number,
    private readonly end: number,
    private readonly id: number,
  ) {
    this.#off = start + 12;
  }

  read(): FrameMeta {
    const { buf, start } = this;
    if (this.end - start < FIXED_BYTES) this.#truncated();
    const fields = buf[start + 3]!;
    // Every key in one literal: one object shape whatever the fields, for fromFrameMeta to read.
    const meta: FrameMeta = {
      k: KINDS[buf[start + 1]!] ?? `kind ${buf[start + 1]!}`,
      q: this.#query(),
      f: buf[start + 2] === 1 ? "protobuf" : "json",
      to: buf.readDoubleLE(start + 4),
      rid: this.#string(),
      ct: fields & HAS_CT ? this.#contentType() : undefined,
      hl: fields & HAS_HL ? this.#number() : undefined,
      d: fields & HAS_DEPTH ? this.#number() : undefined,
      tr: fields & HAS_TRIED ? this.#json(this.#span(), "replica ids tried") : undefined,
      m: fields & HAS_MODEL ? { name: this.#string(), version: fields & HAS_MODEL_VERSION ? this.#string() : undefined } : undefined,
      w: fields & HAS_WINDOW ? this.#number() : undefined,
    };
    if (this.#off !== this.end)
      throw new FrameProtocolError(`frame ${this.id} has ${this.end - this.#off} bytes after its binary call meta`);
    return meta;
  }

  #query(): unknown {
    const span = this.#span();
    if (this.#same(lastQuery.bytes, span)) return lastQuery.value;
    if (this.#off - span > MAX_QUERY_BYTES_CACHED) return this.#json(span, "query");
    const bytes = Buffer.from(this.buf.subarray(span, this.#off)); // a copy: the frame's chunk is not kept
    const key = bytes.toString("latin1");
    let value = queries.get(key);
    if (value === undefined) {
      value = this.#json(span, "query");
      if (queries.size >= MAX_QUERIES) queries.clear();
      queries.set(key, value);
    }
    lastQuery = { bytes, value };
    return value;
  }

  #contentType(): string {
    const span = this.#span();
    if (!this.#same(lastContentType.bytes, span)) {
      lastContentType = { bytes: Buffer.from(this.buf.subarray(span, this.#off)), value: this.buf.toString("utf8", span, this.#off) };
    }
    return lastContentType.value as string;
  }

  /** True when the field that starts at `from` and ends at the cursor holds `bytes`. */
  #same(bytes: Buffer, from: number): boolean {
    const n = bytes.length;
    if (this.#off - from !== n) return false;
    const buf = this.buf;
    for (let i = 0; i < n; i++) if (buf[from + i] !== bytes[i]) return false;
    return true;
  }

  #json(from: number, what: string): unknown {
    try {
      return JSON.parse(this.buf.toString("utf8", from, this.#off));
    } catch {
      throw new FrameProtocolError(`frame ${this.id} has a binary call meta whose ${what} is not valid JSON`);
    }
  }

  #string(): string {
    const from = this.#span();
    return this.buf.toString("utf8", from, this.#off);
  }

  #number(): number {
    if (this.end - this.#off < 8) this.#truncated();
    const n = this.buf.readDoubleLE(this.#off);
    this.#off += 8;
    return n;
  }

  /** Moves the cursor past the next length-prefixed field; returns where its bytes start (they end at the cursor). */
  #span(): number {
    if (this.end - this.#off < 4) this.#truncated();
    const n = this.buf.readUInt32LE(this.#off);
    const from = this.#off + 4;
    if (n > this.end - from) this.#truncated();
    this.#off = from + n;
    return from;
  }

  #truncated(): never {
    throw new FrameProtocolError(`frame ${this.id} has a binary call meta cut short`);
  }
}

/** The call a REQUEST meta (as {@link readCallMeta} reads it) describes. Throws AnyServeError for fields that make no call. */
export function fromFrameMeta(meta: Record<string, unknown>, body: Buffer, signal: CancelSignal): IncomingCall & { kind: FrameKind } {
  const kind = meta.k;
  if (kind !== "infer" && kind !== "stream" && kind !== "meta" && kind !== "health") {
    throw new AnyServeError("UPSTREAM_PROTOCOL_ERROR", `frame kind ${JSON.stringify(kind)} is not one of infer, stream, meta, health`);
  }
  const call: IncomingCall & { kind: FrameKind } = {
    kind,
    query: normalizeCapability(meta.q ?? {}, "frame query"),
    body,
    format: meta.f === "protobuf" ? "protobuf" : "json",
    timeoutMs: finite(meta.to) && meta.to >= 0 ? meta.to : 30_000,
    requestId: typeof meta.rid === "string" ? meta.rid : "",
    signal,
  };
  if (typeof meta.ct === "string") call.contentType = meta.ct;
  if (finite(meta.hl)) call.headerLength = meta.hl;
  if (finite(meta.d)) call.depth = meta.d;
  if (Array.isArray(meta.tr)) call.tried = meta.tr.filter((t): t is string => typeof t === "string");
  const m = meta.m as { name?: unknown; version?: unknown } | undefined;
  if (m && typeof m.name === "string") call.model = { name: m.name, version: typeof m.version === "string" ? m.version : undefined };
  return call;
}

function finite(n: unknown): n is number {
  return typeof n === "number" && Number.isFinite(n);
}

/** The meta of an error answer. */
export function errorMeta(err: unknown): Record<string, unknown> {
  const e = AnyServeError.from(err, "INTERNAL");
  return { code: e.code, error: e.message };
}

/** The meta of a RESPONSE frame for `out`: none for plain JSON (see {@link answerOf}). */
export function answerMeta(out: EncodedBody): Record<string, unknown> | null {
  if (out.headerLength !== undefined) return { ct: out.contentType, hl: out.headerLength };
  return out.contentType === JSON_TYPE ? null : { ct: out.contentType };
}

const JSON_TYPE = "application/json";

/** A RESPONSE frame's answer `{ct, hl?}` as the encoded body it carries (no `ct`: JSON). */
export function answerOf(reply: { meta: Record<string, unknown>; body: Buffer }): EncodedBody {
  const meta = reply.meta;
  const out: EncodedBody = { body: reply.body, contentType: typeof meta.ct === "string" ? meta.ct : JSON_TYPE };
  if (typeof meta.hl === "number") out.headerLength = meta.hl;
  return out;
}

/** An answer's `{code, error}`, rebuilt into the error the replica raised; undefined for a success. */
export function answerError(meta: Record<string, unknown>, replicaId: string): AnyServeError | undefined {
  const code = meta.code;
  if (code === undefined) return undefined;
  const message = typeof meta.error === "string" ? meta.error : `replica '${replicaId}' failed`;
  return new AnyServeError(isErrorCode(code) ? code : "INTERNAL", message);
}
