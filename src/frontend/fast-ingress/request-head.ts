/**
 * A request head as llhttp hands it over, read the way node:http reads it: the header list as
 * `req.headers`, and the rules node:http applies before any route runs (header count, Host on
 * HTTP/1.1, `Expect`), so both ingresses refuse the same requests. Headers past the count
 * node:http keeps are dropped before the bag is built.
 */
import type { RequestHeaders } from "../../util/http.js";

/** Headers node:http keeps the first of when repeated (lib/_http_incoming.js `matchKnownFields`); others are joined with ", ". */
const FIRST_WINS = new Set([
  "content-type",
  "content-length",
  "user-agent",
  "referer",
  "host",
  "authorization",
  "proxy-authorization",
  "if-modified-since",
  "if-unmodified-since",
  "from",
  "location",
  "max-forwards",
  "retry-after",
  "etag",
  "last-modified",
  "server",
  "age",
  "expires",
]);

/** Scratch space for {@link headerBag}: lower-cased names and their order (one head at a time). */
const names: string[] = [];
const order: number[] = [];
/** Up to this many headers an insertion sort; past it, Array.prototype.sort (stable, O(n log n)). */
const INSERTION_SORT_MAX = 16;

/**
 * llhttp's flat `[name, value, …]` list as node:http's `req.headers`: lower-case names, repeats
 * merged the same way. A plain object, as node:http's is (a prototype-less one is a dictionary to
 * V8, slower to build and to walk with `for…in`); names `Object.prototype` has (`constructor`,
 * `__proto__`…) are taken as absent, and assigning a string to `__proto__` does nothing.
 *
 * Names are added in sorted order, not in the order they came in. V8 gives an object built key by
 * key a hidden class per key order, and code optimised for one class deoptimises on the next: wrk,
 * for one, sends its headers in a new order each run, and every route that read the bag was
 * recompiled at the start of every run (and went megamorphic across clients). Sorted, one set of
 * header names is one class, whatever order a client sends them in. The sort is stable, so
 * repeats of one name still merge in the order they came.
 */
export function headerBag(raw: readonly string[]): RequestHeaders {
  const count = raw.length >> 1;
  for (let i = 0; i < count; i++) names[i] = lowerName(raw[2 * i]!);
  if (count <= INSERTION_SORT_MAX) {
    for (let i = 0; i < count; i++) {
      const name = names[i]!;
      let j = i;
      while (j > 0 && names[order[j - 1]!]! > name) {
        order[j] = order[j - 1]!;
        j--;
      }
      order[j] = i;
    }
  } else {
    order.length = count;
    for (let i = 0; i < count; i++) order[i] = i;
    order.sort(byName);
  }
  const bag: RequestHeaders = {};
  for (let k = 0; k < count; k++) {
    const i = order[k]!;
    const name = names[i]!;
    const prev = bag[name];
    if (typeof prev !== "string") bag[name] = raw[2 * i + 1]!;
    else if (!FIRST_WINS.has(name)) bag[name] = `${prev}, ${raw[2 * i + 1]!}`;
  }
  // Do not keep a long head's strings alive until a longer one comes.
  if (count > INSERTION_SORT_MAX) names.length = order.length = 0;
  return bag;
}

/**
 * Lower-cased header names by the spelling they came in. A name fresh from the parser is a new
 * string each request, and V8 looks every new property key up in its string table: building the
 * bag from fresh names cost ~300 ns a request, from these remembered ones ~50 (node:http returns
 * literals for the common names for the same reason). Bounded: a client inventing names cannot
 * grow it.
 */
const lowerNames = new Map<string, string>();
const MAX_LOWER_NAMES = 1024;

function lowerName(raw: string): string {
  let name = lowerNames.get(raw);
  if (name === undefined) {
    name = raw.toLowerCase();
    if (lowerNames.size >= MAX_LOWER_NAMES) lowerNames.clear();
    lowerNames.set(raw, name);
  }
  return name;
}

function byName(a: number, b: number): number {
  const x = names[a]!;
  const y = names[b]!;
  return x < y ? -1 : x > y ? 1 : a - b;
}

/** lib/_http_server.js's test for a `100-continue` expectation. */
const CONTINUE_EXPECTED = /(?:^|\W)100-continue(?:$|\W)/i;

/** What the head rules say: refuse with a status, or go on (with a 100 Continue owed first). */
export type HeadVerdict = { refuse: 400 | 417 } | { refuse: undefined; expectContinue: boolean };

const GO: HeadVerdict = { refuse: undefined, expectContinue: false };
const GO_CONTINUE: HeadVerdict = { refuse: undefined, expectContinue: true };

/**
 * The header lines node:http keeps: the first `maxHeaders` (its default keeps 1000; more are
 * dropped, not refused — the head's size is what llhttp bounds, 16 KiB).
 */
export function keptHeaders(raw: string[], maxHeaders: number): string[] {
  return raw.length > 2 * maxHeaders ? raw.slice(0, 2 * maxHeaders) : raw;
}

/**
 * 400 for HTTP/1.1 without Host (node:http's `requireHostHeader`), 417 for an expectation other
 * than `100-continue` (HTTP/1.1 only, as node:http). Read on the kept headers ({@link keptHeaders}).
 */
export function checkHead(bag: RequestHeaders, major: number, minor: number): HeadVerdict {
  if (minor !== 0 && bag.host === undefined) return { refuse: 400 };
  const expect = bag.expect;
  if (expect === undefined || major !== 1 || minor !== 1) return GO;
  return CONTINUE_EXPECTED.test(String(expect)) ? GO_CONTINUE : { refuse: 417 };
}
