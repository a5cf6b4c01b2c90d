/**
 * Node's own HTTP/1.1 parser (llhttp, as `lib/_http_server.js` drives it), typed for the fast
 * ingress. Using it rather than scanning strings means the fast ingress accepts and refuses exactly
 * the bytes node:http does: chunked bodies are decoded, a duplicate or invalid Content-Length, CL+TE
 * together, bad chunk sizes, bare CR, obs-fold and oversized headers are errors, all in C.
 *
 * `_http_common` is internal to Node, but it has been stable since Node 12 and node:http itself is
 * built on it; the ingress checks the pieces it needs at load time ({@link llhttpAvailable}) and
 * the API server falls back to node:http without it.
 */
import { createRequire } from "node:module";

/** A parse error as `execute()` returns it (or kOnExecute receives it): `code` is llhttp's `HPE_*`. */
export interface ParseError extends Error {
  code: string;
  reason?: string;
  bytesParsed?: number;
}

/** The parser object (`HTTPParser` of `internalBinding('http_parser')`). Callbacks sit at numeric keys. */
export interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  /** Parses a chunk: bytes consumed, or the error. */
  execute(data: Buffer): number | ParseError;
  /** End of input: an error when a message was cut short. */
  finish(): number | ParseError | undefined;
  /** Reads straight from a socket's libuv handle in C++ (no `data` events, no JS Buffers for headers). */
  consume(handle: object): void;
  unconsume(): void;
  /** The chunk kOnExecute is reporting on (a copy), while in consume mode. */
  getCurrentBuffer(): Buffer;
  remove?(): void;
  free(): void;
  close(): void;
  [callback: number]: unknown;
}

interface ParserClass {
  new (): Parser;
  REQUEST: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
  kLenientNone: number;
}

const common = createRequire(import.meta.url)("_http_common") as { HTTPParser?: ParserClass; methods?: string[] };
const P = common.HTTPParser;

/** True when this Node has the parser pieces the fast ingress uses. */
export const llhttpAvailable =
  P !== undefined &&
  Array.isArray(common.methods) &&
  typeof P.prototype.consume === "function" &&
  typeof P.prototype.getCurrentBuffer === "function" &&
  typeof P.kOnExecute === "number";

/** llhttp's method names, indexed by the `method` argument of kOnHeadersComplete. */
export const METHODS: readonly string[] = common.methods ?? [];

export const K = {
  messageBegin: P?.kOnMessageBegin ?? 0,
  headers: P?.kOnHeaders ?? 1,
  headersComplete: P?.kOnHeadersComplete ?? 2,
  body: P?.kOnBody ?? 3,
  messageComplete: P?.kOnMessageComplete ?? 4,
  execute: P?.kOnExecute ?? 5,
} as const;

/** kOnHeadersComplete's answer that stops parsing after this message's headers (llhttp's upgrade pause). */
export const STOP_AFTER_HEADERS = 2;

/** Freed parsers kept for reuse, as node:http keeps 1000 (a new one per connection costs a C++ allocation). */
const pool: Parser[] = [];
const POOL_MAX = 256;
const RESOURCE = {};

/** A request parser in strict mode (no leniency flags: smuggling-prone input is an error, as in node:http). */
export function allocParser(maxHeaderSize: number): Parser {
  const parser = pool.pop() ?? new P!();
  parser.initialize(P!.REQUEST, RESOURCE, maxHeaderSize, P!.kLenientNone);
  return parser;
}

/** Frees a parser (after unconsuming it) — never from inside one of its own callbacks' C++ frame, see below. */
export function freeParser(parser: Parser, consumed: boolean): void {
  if (consumed) parser.unconsume();
  for (const k of Object.values(K)) parser[k] = null;
  parser.remove?.();
  if (pool.length < POOL_MAX) {
    parser.free();
    pool.push(parser);
  } else {
    // Deleting the C++ object must wait until its stack (maybe a callback we are in) unwound.
    setImmediate(() => parser.close());
  }
}
