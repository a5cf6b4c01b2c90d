/**
 * Bearer tokens, checked in constant time. Digests are compared rather than the tokens
 * themselves: `timingSafeEqual` needs equal lengths, and comparing digests leaks neither the
 * token's content nor its length.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { AnyServeError } from "../errors.js";

export function tokenDigest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/** True when an `Authorization` header carries the token whose digest is `want`. */
export function bearerMatches(authorization: string | undefined, want: Buffer): boolean {
  const header = authorization ?? "";
  return timingSafeEqual(tokenDigest(header.startsWith("Bearer ") ? header.slice(7) : ""), want);
}

/** Throws UNAUTHENTICATED (naming `what` needs the token) unless the request carries `token`; no token configured = open. */
export function requireBearer(req: IncomingMessage, token: string | undefined, what: string): void {
  if (token === undefined || token === "") return;
  if (!bearerMatches(req.headers.authorization, tokenDigest(token))) {
    throw new AnyServeError("UNAUTHENTICATED", `${what} needs 'Authorization: Bearer <token>' with the configured token`);
  }
}
