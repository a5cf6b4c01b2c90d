/**
 * Who decides whether a replica is drained, and which word wins. An anyserve replica carries its
 * own drain state (an operator drains it through the management API, and it tells every API server
 * it registers with) and stamps each change with its `drain_seq`: a report older than the one held
 * — a heartbeat sent before the change and arriving after it — is not taken. A replica that reports
 * nothing (a foreign OIP server) is drained here by the operator, and stays drained across its
 * re-registrations until told otherwise. The registry (registry.ts) asks these rules on register,
 * heartbeat and drain; they hold the ids drained here and nothing a registration can grow.
 */
/** What these rules read and write of a registration or a registry entry (registry.ts's types have these fields). */
export interface DrainFields {
  readonly replicaId: string;
  /** What the replica reports: drained or not; absent when it reports nothing. */
  draining?: boolean;
  /** When `draining` was decided (the replica's `drain_seq`). */
  drainSeq?: number;
}

export class DrainStates {
  /**
   * Replicas an operator drained here ({@link decide} without a seq): they stay out of rotation
   * across re-registrations that say nothing of it. A replica that reports `draining` (anyserve
   * replicas do) decides for itself, and its id leaves this set.
   */
  readonly #drained = new Set<string>();

  /**
   * The registration as the registry takes it: with the drain state held for the id when the one it
   * brings is older. A replica that reports its state has nothing remembered here (so registrations
   * cannot grow the set; only operators' drains of other replicas do).
   */
  admit<R extends DrainFields>(given: R, previous: DrainFields | undefined): R {
    const reg =
      previous && isStale(given.drainSeq, previous.drainSeq)
        ? { ...given, draining: previous.draining, drainSeq: previous.drainSeq }
        : given;
    if (reg.draining !== undefined) this.#drained.delete(reg.replicaId);
    return reg;
  }

  /** Whether an admitted registration is in rotation as far as draining goes: its own word, else the operator's here. */
  inRotation(reg: DrainFields): boolean {
    return reg.draining !== undefined ? !reg.draining : !this.#drained.has(reg.replicaId);
  }

  /** A heartbeat's drain report, taken into `entry` unless stale; true when taken (availability follows it). */
  report(entry: DrainFields, draining: boolean, drainSeq: number | undefined): boolean {
    if (isStale(drainSeq, entry.drainSeq)) return false;
    entry.draining = draining;
    if (drainSeq !== undefined) entry.drainSeq = drainSeq;
    this.#drained.delete(entry.replicaId);
    return true;
  }

  /**
   * An operator's drain (or undrain) of `replicaId`. With `drainSeq` the replica carries the state
   * and answered with when it changed, so it goes into its entry (unless a newer one is held);
   * without, it is remembered here for the id. True when taken (availability follows it).
   */
  decide(replicaId: string, entry: DrainFields | undefined, drained: boolean, drainSeq: number | undefined): boolean {
    if (drainSeq !== undefined && entry) {
      if (isStale(drainSeq, entry.drainSeq)) return false;
      entry.draining = drained;
      entry.drainSeq = drainSeq;
      this.#drained.delete(replicaId);
    } else if (drained) this.#drained.add(replicaId);
    else this.#drained.delete(replicaId);
    return true;
  }
}

/** A drain state decided at `seq` is older than the one held (decided at `held`). */
export function isStale(seq: number | undefined, held: number | undefined): boolean {
  return seq !== undefined && held !== undefined && seq < held;
}
