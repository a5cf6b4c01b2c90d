/**
 * One replica as the deployment controller drives it, whatever runs it: a local process today
 * (`local-replica.ts`), a fake in the tests, a Kubernetes pod later. The controller decides
 * (`reconcile.ts`); a handle only does what it is told and reports what it sees. It never restarts
 * itself: a replica that exits stays `exited` until the controller starts it again after its
 * back-off, so crash loops, unhealthy replacement and rolling updates are decided in one place.
 *
 * Phases: `created` → `starting` → `running` → `exited` (unexpected: a crash, a kill, a failed
 * start) → `starting` … ; `stop()` from any phase → `stopping` → `stopped` (final).
 */
import type { ResolvedServiceConfig } from "../config/resolve.js";

export type ReplicaPhase = "created" | "starting" | "running" | "exited" | "stopping" | "stopped";

/** What to run: a replica of `service` in slot `slot`, from the config whose restart-type fields hash to `version`. */
export interface ReplicaSpec {
  replicaId: string;
  service: string;
  /** Its place among the service's replicas (0 … replicas-1); a replacement takes the slot of the one it replaces. */
  slot: number;
  version: string;
  /** The service's resolved config. */
  config: ResolvedServiceConfig;
  /** GPU ids placement gave this slot (`CUDA_VISIBLE_DEVICES`). */
  gpuIds: number[];
}

/** What a handle shows of itself (`/api/deployment`, the dashboard). */
export interface ReplicaInfo {
  pid: number | null;
  /** Starts after the first. */
  restarts: number;
  /** How the last run ended (`code 1`, `SIGKILL`, `failed to start: …`, `replaced, … (SIGKILL)`); null before. */
  lastExit: string | null;
  http: string | null;
  grpc: string | null;
}

/**
 * A replica the controller can start, stop and kill. Each method changes `phase` at once
 * (synchronously) so the controller's next pass sees its effect; later changes (ready, exited,
 * stopped) are announced through `onChange`.
 */
export interface ReplicaHandle {
  readonly spec: ReplicaSpec;
  readonly phase: ReplicaPhase;
  /** From `created` or `exited`: → `starting`, then `running` once it serves, or `exited` if it fails. */
  start(): void;
  /** Drains: the replica unregisters, finishes its work and exits (forced after `graceMs`). Resolves when `stopped`. */
  stop(graceMs?: number): Promise<void>;
  /** Ends a running replica that is alive but not serving, without draining (a stuck process cannot drain); → `exited`. */
  kill(reason: string): void;
  /** Called after every phase change. */
  onChange(listener: () => void): void;
  info(): ReplicaInfo;
}

/** Makes (does not start) the handle of a new replica: the one seam between the controller and what runs replicas. */
export type ReplicaFactory = (spec: ReplicaSpec) => ReplicaHandle;

/** A replica's state as reported: its phase, with the controller's view (`restarting`, `crash_looping`). */
export type ReplicaState = "starting" | "running" | "restarting" | "crash_looping" | "stopping" | "stopped";

export interface ReplicaStatus extends ReplicaInfo {
  replicaId: string;
  service: string;
  slot: number;
  version: string;
  state: ReplicaState;
}
