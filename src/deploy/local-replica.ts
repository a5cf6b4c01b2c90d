/**
 * Replicas as processes on this machine: the `ReplicaHandle` that `anyserve up` and the
 * Environment API use. Each run is `anyserve start …` (the one place a service config becomes a
 * replica process: `replicaArgs`/`replicaEnv`), ready when it prints its ready line (it has
 * registered by then). Stopping sends SIGTERM — the replica unregisters, drains and exits — and
 * SIGKILL after the grace period; killing sends SIGKILL at once. Restarting is the controller's
 * decision (`reconcile.ts`), never the handle's.
 */
import type { ChildProcess } from "node:child_process";
import { spawnAnyserve, stopChild } from "./child-process.js";
import type { CpuCapper } from "./cpu-cap.js";
import { replicaArgs, replicaEnv, replicaExecArgv } from "./replica-args.js";
import type { ReplicaFactory, ReplicaHandle, ReplicaInfo, ReplicaPhase, ReplicaSpec } from "./replica-handle.js";

export interface LocalReplicaOptions {
  /** Where the replicas register. */
  apiServerUrl: string;
  nodeName: string;
  /** The control-plane token the replicas register with. */
  token?: string | undefined;
  /** The inference token the replicas require. */
  inferenceToken?: string | undefined;
  /** Caps replicas' CPU at their `cpu_cores` (cgroups), where this machine allows it. */
  cpu?: CpuCapper | undefined;
}

interface Launch {
  args: string[];
  env: NodeJS.ProcessEnv;
  execArgv: string[];
  /** The cgroup capper and the cores to cap at, when the service sets `cpu_cores`. */
  cpu?: { capper: Extract<CpuCapper, { available: true }>; cores: number } | undefined;
}

/** Replica handles that run `anyserve start` processes on this machine. */
export function localReplicas(o: LocalReplicaOptions): ReplicaFactory {
  return (spec) =>
    new LocalReplica(spec, {
      args: replicaArgs({
        service: spec.service,
        cfg: spec.config,
        replicaId: spec.replicaId,
        apiServer: o.apiServerUrl,
        nodeName: o.nodeName,
      }),
      env: replicaEnv(spec.config, spec.gpuIds, { token: o.token, inferenceToken: o.inferenceToken }),
      execArgv: replicaExecArgv(spec.config),
      cpu:
        o.cpu?.available && spec.config.resources.cpu_cores !== null
          ? { capper: o.cpu, cores: spec.config.resources.cpu_cores }
          : undefined,
    });
}

export class LocalReplica implements ReplicaHandle {
  readonly spec: ReplicaSpec;
  readonly #launch: Launch;
  #phase: ReplicaPhase = "created";
  #child: ChildProcess | undefined;
  #ready: Record<string, unknown> = {};
  #restarts = -1;
  #lastExit: string | null = null;
  /** Why kill() ended the current run, until its exit is seen. */
  #killedFor: string | undefined;
  readonly #listeners: (() => void)[] = [];
  readonly #stopped: Promise<void>;
  #resolveStopped!: () => void;

  constructor(spec: ReplicaSpec, launch: Launch) {
    this.spec = spec;
    this.#launch = launch;
    this.#stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
  }

  get phase(): ReplicaPhase {
    return this.#phase;
  }

  start(): void {
    if (this.#phase !== "created" && this.#phase !== "exited") return;
    this.#restarts++;
    this.#ready = {};
    this.#set("starting");
    const run = spawnAnyserve(this.spec.replicaId, this.#launch.args, {
      env: this.#launch.env,
      execArgv: this.#launch.execArgv,
      echo: true,
    });
    const child = run.process;
    this.#child = child;
    run.ready.then(
      (info) => {
        if (this.#child !== child) return;
        this.#ready = info;
        if (child.exitCode !== null || child.signalCode !== null) {
          this.#ended(child, child.signalCode ?? `code ${child.exitCode}`);
          return;
        }
        child.once("exit", (code, signal) => this.#ended(child, signal ?? `code ${code}`));
        this.#capCpu(child);
        if (this.#phase === "starting") this.#set("running");
      },
      (err: Error) => {
        const lines = err.message.split("\n").filter(Boolean);
        this.#ended(child, `failed to start: ${lines.slice(-3).join(" | ").slice(0, 500)}`);
      },
    );
  }

  stop(graceMs = 30_000): Promise<void> {
    if (this.#phase === "created" || this.#phase === "exited") this.#set("stopped");
    else if (this.#phase === "starting" || this.#phase === "running") {
      this.#set("stopping");
      if (this.#child) void stopChild(this.#child, graceMs);
    }
    return this.#stopped;
  }

  kill(reason: string): void {
    if (this.#phase !== "running" || this.#child === undefined || this.#killedFor !== undefined) return;
    this.#killedFor = reason;
    this.#child.kill("SIGKILL");
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  info(): ReplicaInfo {
    return {
      pid: this.#child?.pid ?? null,
      restarts: Math.max(0, this.#restarts),
      lastExit: this.#lastExit,
      http: typeof this.#ready.http === "string" ? this.#ready.http : null,
      grpc: typeof this.#ready.grpc === "string" ? this.#ready.grpc : null,
    };
  }

  /**
   * Puts the process in its CPU-capped cgroup once it serves: start-up (loading Node, the app, the
   * first workers) is not throttled, as a cap of a fraction of a core would make it take minutes.
   * Workers it starts later are its children and inherit the group.
   */
  #capCpu(child: ChildProcess): void {
    const cpu = this.#launch.cpu;
    if (cpu === undefined || child.pid === undefined) return;
    try {
      cpu.capper.cap(this.spec.replicaId, child.pid, cpu.cores);
    } catch (err) {
      process.stderr.write(`[${this.spec.replicaId}] cpu_cores ${cpu.cores} not applied: ${(err as Error).message}\n`);
    }
  }

  /** The run of `child` is over: stopped if we asked for it, exited otherwise. */
  #ended(child: ChildProcess, why: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    this.#launch.cpu?.capper.release(this.spec.replicaId);
    this.#lastExit = this.#killedFor === undefined ? why : `replaced, ${this.#killedFor} (${why})`;
    this.#killedFor = undefined;
    this.#set(this.#phase === "stopping" ? "stopped" : "exited");
  }

  #set(phase: ReplicaPhase): void {
    this.#phase = phase;
    if (phase === "stopped") this.#resolveStopped();
    for (const listener of this.#listeners) listener();
  }
}
