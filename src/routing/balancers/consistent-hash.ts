/**
 * Consistent hashing by affinity key, using rendezvous (highest-random-weight) hashing: each
 * candidate scores hash(key, replicaId) and the highest score wins. Pick it when a replica
 * holds per-key state worth reusing (a KV/prefix cache, a session, a loaded adapter): the same
 * key keeps going to the same replica, and when a replica leaves only its own keys move (about
 * 1/N of them); when one joins it takes about 1/(N+1) from the others. It ignores load, so a
 * hot key stays hot on one replica. Requests without a key fall back to power-of-two choices.
 *
 * Rendezvous needs no ring to rebuild as replicas come and go, and with the per-replica hash
 * cached a pick is one string hash plus one integer mix per candidate.
 */
import type { ReplicaEntry } from "../registry.js";
import type { BalanceContext, Balancer } from "./base.js";
import { PowerOfTwoBalancer } from "./power-of-two.js";

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the UTF-16 code units of `s`, as an unsigned 32-bit integer. */
function fnv1a(s: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  }
  return h >>> 0;
}

/** murmur3's 32-bit finalizer: a bijection that spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The score of one (key, replica) pair from their separately computed hashes. */
function weight(keyHash: number, idHash: number): number {
  // Two mixing rounds so that nearby key hashes do not rank replicas alike.
  return fmix32(Math.imul(fmix32(keyHash ^ idHash), 0x9e3779b1) ^ idHash);
}

export class ConsistentHashBalancer implements Balancer {
  readonly name = "consistent_hash";
  readonly #fallback: PowerOfTwoBalancer;
  /** Per-entry hash of its replicaId; weak so replaced or removed entries are collected. */
  readonly #idHashes = new WeakMap<ReplicaEntry, number>();

  /** `rand` feeds the power-of-two fallback used for requests without a key. */
  constructor(rand: () => number = Math.random) {
    this.#fallback = new PowerOfTwoBalancer(rand);
  }

  pick(candidates: readonly ReplicaEntry[], ctx?: BalanceContext): ReplicaEntry {
    const key = ctx?.key;
    if (key === undefined) return this.#fallback.pick(candidates);
    const n = candidates.length;
    if (n === 1) return candidates[0]!;
    const keyHash = fnv1a(key, FNV_OFFSET);
    let best = candidates[0]!;
    let bestWeight = weight(keyHash, this.#idHash(best));
    for (let i = 1; i < n; i++) {
      const c = candidates[i]!;
      const w = weight(keyHash, this.#idHash(c));
      // Equal weights are broken by id so the answer never depends on candidate order.
      if (w > bestWeight || (w === bestWeight && c.replicaId < best.replicaId)) {
        best = c;
        bestWeight = w;
      }
    }
    return best;
  }

  #idHash(entry: ReplicaEntry): number {
    let h = this.#idHashes.get(entry);
    if (h === undefined) {
      // A different seed from the key hash, so a key equal to an id is not special.
      h = fmix32(fnv1a(entry.replicaId, 0x9747b28c));
      this.#idHashes.set(entry, h);
    }
    return h;
  }
}
