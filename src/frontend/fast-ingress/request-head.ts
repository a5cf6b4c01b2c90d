/**
 * A request head as llhttp hands it over, read the way node:http reads it: the header list as
 * `req.headers`, and the rules node:http applies before any route runs (header count, Host on
 * HTTP/1.1, `Expect`), so both ingresses refuse the same requests.
 */
import type { RequestHeaders } from "../http-util.js";

/** Headers node:http keeps the first of when repeated (lib/_http_incoming.js `matchKnownFields`); others are joined with ", ". */
const FIRST_WINS = new Set([
  "content-type", "content-length", "user-agent", "referer", "host", "authorization", "proxy-authorization",
  "if-modified-since", "if-unmodified-since", "from", "location", "max-forwards", "retry-after", "etag",
  "last-modified", "server", "age", "expires",
]);

/**
 * llhttp's flat `[name, value, …]` list as node:http's `req.headers`: lower-case names, repeats
 * merged the same way. A plain object, as node:http's is (a prototype-less one is a dictionary to
 * V8, slower to build and to walk with `for…in`); names `Object.prototype` has (`constructor`,
 * `__proto__`…) are taken as absent, and assigning a string to `__proto__` does nothing.
 */
export function headerBag(raw: readonly string[]): RequestHeaders {
  const bag: RequestHeaders = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const prev = bag[name];
    if (typeof prev !== "string") bag[name] = raw[i + 1]!;
    else if (!FIRST_WINS.has(name)) bag[name] = `${prev}, ${raw[i + 1]!}`;
  }
  return bag;
}

/** lib/_http_server.js's test for a `100-continue` expectation. */
const CONTINUE_EXPECTED = /(?:^|\W)100-continue(?:$|\W)/i;

/** What the head rules say: refuse with a status, or go on (with a 100 Continue owed first). */
export type HeadVerdict = { refuse: 400 | 417 | 431 } | { refuse: undefined; expectContinue: boolean };

const GO: HeadVerdict = { refuse: undefined, expectContinue: false };
const GO_CONTINUE: HeadVerdict = { refuse: undefined, expectContinue: true };

/**
 * 431 past `maxHeaders` header lines, 400 for HTTP/1.1 without Host (node:http's
 * `requireHostHeader`), 417 for an expectation other than `100-continue` (HTTP/1.1 only, as node:http).
 */
export function checkHead(raw: readonly string[], bag: RequestHeaders, major: number, minor: number, maxHeaders: number): HeadVerdict {
  if (raw.length / 2 > maxHeaders) return { refuse: 431 };
  if (minor !== 0 && bag.host === undefined) return { refuse: 400 };
  const expect = bag.expect;
  if (expect === undefined || major !== 1 || minor !== 1) return GO;
  return CONTINUE_EXPECTED.test(String(expect)) ? GO_CONTINUE : { refuse: 417 };
}
