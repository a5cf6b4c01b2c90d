/**
 * What the forwarder learns from each answered attempt, per replica *instance*: successes and
 * failures feed the outlier detector (ejection) and the circuit breakers (per capability). Which
 * failure counts for what is routing/outcome.ts's rule: a cancelled call counts for nothing, resource
 * answers (507, 413) and load shedding open no circuit, and only a replica's own faults move it
 * towards ejection. A new process under a replica id starts with a clean record.
 */
import type { AnyServeError, ErrorCode } from "../errors.js";
import { targetOf, type ReplicaEntry, type Route } from "../routing/registry.js";
import { isCircuitFailure, isReplicaFault } from "../routing/outcome.js";
import { CircuitBreakers, type CircuitBreakerOptions } from "./resilience/circuit-breaker.js";
import { OutlierDetector, type OutlierDetectorOptions } from "./resilience/outlier-detector.js";

export class ReplicaOutcomes {
  readonly outliers: OutlierDetector;
  readonly circuits: CircuitBreakers;
  /** Each registered replica's instance (target and secret) as last registered: a change is a new process. */
  readonly #instances = new Map<string, string>();
  /** The forwarder's counters: an ejection is counted in `ejections`. */
  readonly #counters: { ejections: number };

  constructor(
    options: { outlier?: OutlierDetectorOptions | undefined; circuit?: CircuitBreakerOptions | undefined },
    counters: { ejections: number },
    registered: Iterable<ReplicaEntry>,
  ) {
    this.outliers = new OutlierDetector(options.outlier);
    this.circuits = new CircuitBreakers(options.circuit);
    this.#counters = counters;
    for (const e of registered) this.#instances.set(e.replicaId, instanceOf(e));
  }

  /**
   * A registry change (its `onChange` listener). A new process under this id (or none) starts with a
   * clean record. Judged by the instance seen at the last registration, not by the forwarder's
   * client: after an unregister there is no client, and failures of requests still in flight to the
   * dead process are recorded after it — its replacement must not inherit that ejection (seen: 23 s
   * out of rotation after a restart).
   */
  track(event: "register" | "unregister", entry: ReplicaEntry): void {
    const instance = instanceOf(entry);
    const fresh = event === "unregister" || this.#instances.get(entry.replicaId) !== instance;
    if (event === "unregister") this.#instances.delete(entry.replicaId);
    else this.#instances.set(entry.replicaId, instance);
    if (fresh) {
      this.outliers.forget(entry.replicaId);
      this.circuits.forget(entry.replicaId);
    }
  }

  /** An attempt on `entry` for `route` was answered: without error (`failure` undefined), or with `failure`. */
  record(entry: ReplicaEntry, route: Route, failure: AnyServeError | undefined): void {
    if (failure !== undefined) {
      this.#failure(entry, route, failure.code);
      return;
    }
    this.outliers.onSuccess(entry.replicaId);
    if (route.replicas.length > 0) this.circuits.record(entry.replicaId, route.key, true);
  }

  #failure(entry: ReplicaEntry, route: Route, code: ErrorCode): void {
    if (code === "CANCELLED") return; // the caller left: says nothing about the replica
    // Circuits are per capability the replica serves; a delegated query it does not serve has none
    // (and its key, made up by the client, must not become one).
    if (route.replicas.length > 0) this.circuits.record(entry.replicaId, route.key, !isCircuitFailure(code));
    if (!isReplicaFault(code)) {
      this.outliers.onSuccess(entry.replicaId);
      return;
    }
    const peers = route.replicas.map((e) => e.replicaId);
    if (this.outliers.onFailure(entry.replicaId, peers)) this.#counters.ejections++;
  }
}

/** Which process a registration is: where it is reached and the secret it proves itself with. */
function instanceOf(entry: ReplicaEntry): string {
  return `${targetOf(entry)} ${entry.secret ?? ""}`;
}
