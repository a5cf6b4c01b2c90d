/**
 * Who may register, heartbeat and unregister which replica id, and how many (docs/security.md).
 *
 * - **A replica owns its id.** It registers with a secret of its own (`replica_secret`; the API
 *   server issues one when a registration brings none, the seed's shape) and shows it to
 *   re-register, heartbeat and unregister. A registration naming a live id without its secret is
 *   409 `REPLICA_ID_TAKEN` — it cannot take another replica's traffic — unless it comes with the
 *   control-plane token (a replica `up` restarted on a new port). A heartbeat or unregister with a
 *   wrong secret is 401: another replica's heartbeats cannot keep an entry alive, nor can anyone
 *   remove it. A replica registered in the seed's shape may heartbeat without its issued secret
 *   (liveness only; it cannot change the entry's capabilities that way).
 * - **Bounded.** At most `maxReplicas` entries (507 `REGISTRY_FULL` for a new id past it), and new
 *   ids at most `ratePerSecond` a second with a burst of as many (429 `REGISTRATION_RATE_LIMITED`);
 *   re-registrations of known ids are not counted.
 * - The secret is also the replica's credential for its own requests to the API server
 *   (delegation, {@link RegistrationGate.isReplica}) and the gateway's to the replica's frame
 *   endpoint (forwarder.ts): it is never listed in `/registry` or the route table.
 */
import { AnyServeError } from "../errors.js";
import { newSecret, parseReplicaCredential, secretMatches } from "../util/auth.js";
import type { Registry, ReplicaEntry, ReplicaRegistration } from "../routing/registry.js";
import type { HeartbeatUpdate } from "../routing/registration.js";

export interface RegistrationLimits {
  /** Replicas the registry holds at most. */
  maxReplicas: number;
  /** New replica ids accepted per second (and in one burst). */
  ratePerSecond: number;
}

export const DEFAULT_REGISTRATION_LIMITS: RegistrationLimits = { maxReplicas: 1024, ratePerSecond: 100 };

export interface RegistrationGateOptions {
  registry: Registry;
  limits?: Partial<RegistrationLimits> | undefined;
  now?: () => number;
}

/** How the caller proved itself: the control-plane token (trusted with any id), or nothing beyond the body. */
export type Caller = "control" | "anyone";

export class RegistrationGate {
  readonly #registry: Registry;
  readonly #limits: RegistrationLimits;
  readonly #now: () => number;
  /** Token bucket of new ids: what is left, and when it was last filled. */
  #tokens: number;
  #filledAt: number;

  constructor(o: RegistrationGateOptions) {
    this.#registry = o.registry;
    this.#limits = { ...DEFAULT_REGISTRATION_LIMITS, ...o.limits };
    this.#now = o.now ?? Date.now;
    this.#tokens = this.#limits.ratePerSecond;
    this.#filledAt = this.#now();
  }

  get limits(): RegistrationLimits {
    return this.#limits;
  }

  /** Registers `reg` if the caller may; returns the entry (its `secret` is the one in force, for the answer). */
  register(reg: ReplicaRegistration, caller: Caller): ReplicaEntry {
    const current = this.#registry.get(reg.replicaId);
    if (current === undefined) {
      this.#admitNew(reg.replicaId);
      return this.#registry.register(withSecret(reg));
    }
    if (caller === "control" || (reg.secret !== undefined && secretMatches(reg.secret, current.secret ?? ""))) {
      return this.#registry.register(withSecret(reg));
    }
    // The seed's shape: the same endpoints registering again without the secret it was issued.
    if (reg.secret === undefined && current.secretIssued && sameEndpoints(reg, current)) {
      return this.#registry.register({ ...reg, secret: current.secret!, secretIssued: true });
    }
    throw new AnyServeError(
      "REPLICA_ID_TAKEN",
      `replica id '${reg.replicaId}' is registered by a live replica${current.httpEndpoint ? ` at ${current.httpEndpoint}` : ""}: re-registering it needs that replica's replica_secret (or the control-plane token); choose another id, or wait until it leaves`,
    );
  }

  /** Records a heartbeat if the caller may (see the module comment); throws REPLICA_NOT_FOUND for an unknown id. */
  heartbeat(h: HeartbeatUpdate, caller: Caller): ReplicaEntry {
    const current = this.#registry.get(h.replicaId);
    if (current === undefined) throw new AnyServeError("REPLICA_NOT_FOUND", `replica '${h.replicaId}' is not registered`);
    const owner = this.#owns(current, h.secret, caller);
    if (!owner && !(h.secret === undefined && current.secretIssued)) throw wrongSecret(h.replicaId, "heartbeat", h.secret);
    // Only the owner changes what the replica serves or whether it is drained; others keep it alive.
    if (!owner) return this.#registry.heartbeat(h.replicaId);
    return this.#registry.heartbeat(h.replicaId, {
      ...(h.capabilities !== undefined ? { capabilities: h.capabilities } : {}),
      ...(h.draining !== undefined ? { draining: h.draining } : {}),
      ...(h.drainSeq !== undefined ? { drainSeq: h.drainSeq } : {}),
    });
  }

  /** Removes a replica if the caller may; false when the id is unknown. */
  unregister(u: { replicaId: string; secret?: string }, caller: Caller): boolean {
    const current = this.#registry.get(u.replicaId);
    if (current === undefined) return false;
    if (!this.#owns(current, u.secret, caller)) throw wrongSecret(u.replicaId, "unregister", u.secret);
    return this.#registry.unregister(u.replicaId);
  }

  /** True when `credential` (`<replica_id> <secret>`, the x-anyserve-replica header) names a registered replica and its secret. */
  isReplica(credential: string): boolean {
    const c = parseReplicaCredential(credential);
    if (c === undefined) return false;
    const secret = this.#registry.get(c.replicaId)?.secret;
    return secret !== undefined && secretMatches(c.secret, secret);
  }

  /** A secret given must be the entry's; without one, only the control-plane token will do. */
  #owns(entry: ReplicaEntry, secret: string | undefined, caller: Caller): boolean {
    if (secret !== undefined) return secretMatches(secret, entry.secret ?? "");
    return caller === "control";
  }

  #admitNew(replicaId: string): void {
    const { maxReplicas, ratePerSecond } = this.#limits;
    if (this.#registry.size >= maxReplicas) {
      throw new AnyServeError(
        "REGISTRY_FULL",
        `the registry holds ${this.#registry.size} replicas, its limit (api_server.max_replicas ${maxReplicas}): replica '${replicaId}' is refused until one leaves`,
      );
    }
    const now = this.#now();
    this.#tokens = Math.min(ratePerSecond, this.#tokens + ((now - this.#filledAt) / 1000) * ratePerSecond);
    this.#filledAt = now;
    if (this.#tokens < 1) {
      throw new AnyServeError(
        "REGISTRATION_RATE_LIMITED",
        `new replicas are arriving faster than ${ratePerSecond} a second (api_server.registration_rate): replica '${replicaId}' may try again shortly`,
      );
    }
    this.#tokens -= 1;
  }
}

/** The registration with its secret: its own, or one issued now. */
function withSecret(reg: ReplicaRegistration): ReplicaRegistration {
  return reg.secret !== undefined ? { ...reg, secretIssued: false } : { ...reg, secret: newSecret(), secretIssued: true };
}

function sameEndpoints(a: ReplicaRegistration, b: ReplicaRegistration): boolean {
  return a.endpoint === b.endpoint && a.httpEndpoint === b.httpEndpoint;
}

function wrongSecret(replicaId: string, what: string, secret: string | undefined): AnyServeError {
  return new AnyServeError(
    "UNAUTHENTICATED",
    `${what} of replica '${replicaId}' needs ${secret === undefined ? "its replica_secret" : "its own replica_secret: the one sent is not it"} (or the control-plane token)`,
    { scope: "replica", presented: secret !== undefined },
  );
}
