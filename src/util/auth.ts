/**
 * Bearer tokens and secrets, checked in constant time. Digests are compared rather than the
 * tokens themselves: `timingSafeEqual` needs equal lengths, and comparing digests leaks neither the
 * token's content nor its length. Which token guards what is docs/security.md.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { AnyServeError } from "../errors.js";

/** What a token lets its holder do (the `scope` of a 401's `WWW-Authenticate`). */
export type Scope = "control" | "read" | "inference" | "replica";

export function tokenDigest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/** The token an `Authorization: Bearer <token>` header carries, or "" when it carries none. */
export function bearerOf(authorization: string | string[] | undefined): string {
  const header = Array.isArray(authorization) ? (authorization[0] ?? "") : (authorization ?? "");
  return header.startsWith("Bearer ") ? header.slice(7) : "";
}

/** True when an `Authorization` header carries the token whose digest is `want`. */
export function bearerMatches(authorization: string | string[] | undefined, want: Buffer): boolean {
  return timingSafeEqual(tokenDigest(bearerOf(authorization)), want);
}

/** True when `given` is `secret`, in constant time. */
export function secretMatches(given: string, secret: string): boolean {
  return timingSafeEqual(tokenDigest(given), tokenDigest(secret));
}

/** A fresh random secret (256 bits, base64url): a replica's own, or a generated control-plane token. */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * The key replicas of one deployment show each other (object fetches, direct frame connections),
 * derived from the control-plane token so every holder of the token can compute it and nobody
 * else can: a replica never sends the control-plane token itself to another replica's endpoint,
 * and a peer key that leaks does not give the control plane away.
 */
export function peerKeyOf(controlToken: string): string {
  return createHmac("sha256", controlToken).update("anyserve peer key v1").digest("base64url");
}

/** The 401 for a request without the token `scope` needs (`presented`: it sent one, the wrong one). */
export function unauthenticated(what: string, scope: Scope, presented: boolean): AnyServeError {
  const which =
    scope === "read"
      ? "the read token or the control-plane token"
      : scope === "inference"
        ? "the inference token"
        : "the control-plane token";
  return new AnyServeError(
    "UNAUTHENTICATED",
    `${what} needs 'Authorization: Bearer <token>' with ${which}${presented ? ": the token sent is not it" : ""}`,
    { scope, presented },
  );
}

/** Throws UNAUTHENTICATED (naming `what` needs the token) unless the request carries `token`; no token configured = open. */
export function requireBearer(req: IncomingMessage, token: string | undefined, what: string, scope: Scope = "control"): void {
  if (token === undefined || token === "") return;
  if (!bearerMatches(req.headers.authorization, tokenDigest(token))) {
    throw unauthenticated(what, scope, bearerOf(req.headers.authorization) !== "");
  }
}

/**
 * A set of accepted bearer tokens, compared by digest: `accepts` is true when the header carries
 * any of them. Empty = nothing is accepted.
 */
export class TokenSet {
  readonly #digests: Buffer[];
  constructor(tokens: (string | undefined)[]) {
    this.#digests = tokens.filter((t): t is string => t !== undefined && t !== "").map(tokenDigest);
  }
  get size(): number {
    return this.#digests.length;
  }
  accepts(authorization: string | string[] | undefined): boolean {
    const given = tokenDigest(bearerOf(authorization));
    let ok = false;
    // Every digest is compared, so the time does not say which one matched.
    for (const d of this.#digests) ok = timingSafeEqual(given, d) || ok;
    return ok;
  }
}

/**
 * The header a replica of this deployment adds to the requests it sends the API server on its
 * own behalf (delegation): `<replica_id> <replica_secret>`. Only with it do delegation headers count.
 */
export const REPLICA_HEADER = "x-anyserve-replica";

/**
 * Who may call the data plane (inference, model metadata), and whether a request comes from a
 * replica of this deployment — the only callers whose delegation headers (`X-Delegated-From`,
 * `X-Delegation-Depth`) are read. Shared by the REST front end, the fast ingress and gRPC.
 */
export interface DataPlaneAuth {
  /**
   * Throws UNAUTHENTICATED when an inference token is configured and the request shows neither it
   * nor a replica credential; returns true when it shows a valid replica credential.
   */
  check(authorization: string | string[] | undefined, replica: string | string[] | undefined): boolean;
}

/**
 * The data-plane check: `inferenceToken` (none = open), and `isReplica` for the value of the
 * {@link REPLICA_HEADER} (the API server asks its registry; a replica trusts no such header).
 */
export function dataPlaneAuth(o: { inferenceToken?: string | undefined; isReplica?: (credential: string) => boolean }): DataPlaneAuth {
  const want = o.inferenceToken ? tokenDigest(o.inferenceToken) : undefined;
  const isReplica = o.isReplica;
  return {
    check(authorization, replica) {
      if (isReplica !== undefined && replica !== undefined) {
        const value = Array.isArray(replica) ? replica[0] : replica;
        if (value !== undefined && value.length <= 512 && isReplica(value)) return true;
      }
      if (want !== undefined && !bearerMatches(authorization, want)) {
        throw unauthenticated("inference", "inference", bearerOf(authorization) !== "");
      }
      return false;
    },
  };
}

/** Splits a {@link REPLICA_HEADER} value into the id and the secret; undefined when malformed. */
export function parseReplicaCredential(value: string): { replicaId: string; secret: string } | undefined {
  const space = value.indexOf(" ");
  if (space <= 0) return undefined;
  return { replicaId: value.slice(0, space), secret: value.slice(space + 1) };
}
