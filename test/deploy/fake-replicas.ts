/**
 * Fakes for the deployment controller's unit tests: replica handles that change phase when the
 * test says (or at once), and a clock whose time moves only when the test moves it. The fakes stand
 * in for processes so that scaling, back-off, crash loops, unhealthy replacement and rolling updates
 * can be driven step by step and fast; the registry is the real one, and a fake replica registers
 * in it when ready and unregisters when asked to stop, as a replica process does. The real handle
 * (`src/deploy/local-replica.ts`) is covered by the process-level tests (up, apply, supervisor,
 * resilience).
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Clock } from "../../src/deploy/controller.js";
import type { ReplicaFactory, ReplicaHandle, ReplicaInfo, ReplicaPhase, ReplicaSpec } from "../../src/deploy/replica-handle.js";
import { Registry } from "../../src/routing/registry.js";

/** Lets every queued pass of the controller (and what it triggers) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await nextTurn();
}

export class FakeClock implements Clock {
  #now = 1_700_000_000_000;
  #nextId = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }

  schedule(fn: () => void, ms: number): () => void {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return () => this.#timers.delete(id);
  }

  /** Moves time forward by `ms`, firing the timers due on the way in time order; the controller runs after each. */
  async advance(ms: number): Promise<void> {
    await settle(); // what is already queued runs (and sets its timers) at the current time
    const end = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }
}

export interface FakeOptions {
  /** A started replica becomes ready (registered, healthy, running) at once; false: the test calls `ready()`. */
  autoReady?: boolean;
  /** A stopping replica is stopped at once; false: the test calls `finishStop()` (it is draining until then). */
  autoStop?: boolean;
  /** Replicas whose starts fail (they exit before they are ready), e.g. a broken app. */
  failsToStart?: (spec: ReplicaSpec) => boolean;
}

/** The handles a controller made, the registry they register in, and what happened to them. */
export class FakeReplicas {
  readonly registry = new Registry();
  readonly made: FakeReplica[] = [];
  /** Every phase change, as `id phase`, in order. */
  readonly events: string[] = [];
  readonly o: Required<FakeOptions>;
  /** Called after every phase change and registry change (the invariants of a test go here). */
  onEvent: () => void = () => undefined;

  constructor(o: FakeOptions = {}) {
    this.o = { autoReady: true, autoStop: true, failsToStart: () => false, ...o };
    this.registry.onRoutingChange(() => this.onEvent());
  }

  readonly factory: ReplicaFactory = (spec) => {
    const r = new FakeReplica(spec, this);
    this.made.push(r);
    return r;
  };

  get(id: string): FakeReplica {
    const r = this.made.find((x) => x.spec.replicaId === id);
    if (!r) throw new Error(`no replica ${id}; made: ${this.made.map((x) => x.spec.replicaId).join(", ")}`);
    return r;
  }

  /** Replicas of `service` that are not stopped, by id. */
  live(service: string): string[] {
    return this.made.filter((r) => r.spec.service === service && r.phase !== "stopped").map((r) => r.spec.replicaId);
  }

  /** Replicas of `service` that take requests: running, registered, healthy, not draining. */
  serving(service: string): string[] {
    return this.made
      .filter((r) => r.spec.service === service && r.phase === "running")
      .filter((r) => {
        const e = this.registry.get(r.spec.replicaId);
        return e?.healthy === true && e.available;
      })
      .map((r) => r.spec.replicaId);
  }

  inPhase(phase: ReplicaPhase): FakeReplica[] {
    return this.made.filter((r) => r.phase === phase);
  }
}

export class FakeReplica implements ReplicaHandle {
  phase: ReplicaPhase = "created";
  starts = 0;
  lastExit: string | null = null;
  readonly #listeners: (() => void)[] = [];
  #stopped: Promise<void> | undefined;
  #resolveStopped: (() => void) | undefined;

  constructor(
    readonly spec: ReplicaSpec,
    readonly fakes: FakeReplicas,
  ) {}

  start(): void {
    if (this.phase !== "created" && this.phase !== "exited") throw new Error(`${this.spec.replicaId}: start() while ${this.phase}`);
    this.starts++;
    this.#set("starting");
    if (this.fakes.o.failsToStart(this.spec)) queueMicrotask(() => this.exit("failed to start: Error: missing model weights"));
    else if (this.fakes.o.autoReady) queueMicrotask(() => this.ready());
  }

  /** It serves: registered (healthy) and running — what a replica process has done when it prints its ready line. */
  ready(): void {
    if (this.phase !== "starting") return;
    this.fakes.registry.register({
      replicaId: this.spec.replicaId,
      endpoint: `fake:${this.spec.replicaId}`,
      httpEndpoint: `http://fake/${this.spec.replicaId}/${this.starts}`,
      capabilities: [{ capability: { type: "fake", svc: this.spec.service }, state: "warm" }],
      service: this.spec.service,
      heartbeatIntervalMs: 10_000,
    });
    this.#set("running");
  }

  /** The process ended on its own (a crash); it stays registered until the controller takes it out. */
  exit(why = "code 1"): void {
    if (this.phase !== "starting" && this.phase !== "running") throw new Error(`${this.spec.replicaId}: exit while ${this.phase}`);
    this.lastExit = why;
    this.#set("exited");
  }

  stop(): Promise<void> {
    if (this.phase === "created" || this.phase === "exited") this.#set("stopped");
    else if (this.phase === "starting" || this.phase === "running") {
      // A leaving replica unregisters first, then drains.
      this.fakes.registry.unregister(this.spec.replicaId);
      this.#set("stopping");
      if (this.fakes.o.autoStop) queueMicrotask(() => this.finishStop());
    }
    if (this.phase === "stopped") return Promise.resolve();
    this.#stopped ??= new Promise((resolve) => (this.#resolveStopped = resolve));
    return this.#stopped;
  }

  /** Its drain is over. */
  finishStop(): void {
    if (this.phase !== "stopping") throw new Error(`${this.spec.replicaId}: finishStop while ${this.phase}`);
    this.#set("stopped");
    this.#resolveStopped?.();
  }

  kill(reason: string): void {
    if (this.phase !== "running") return;
    this.lastExit = `replaced, ${reason} (SIGKILL)`;
    this.#set("exited");
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  info(): ReplicaInfo {
    return { pid: null, restarts: Math.max(0, this.starts - 1), lastExit: this.lastExit, http: null, grpc: null };
  }

  #set(phase: ReplicaPhase): void {
    this.phase = phase;
    this.fakes.events.push(`${this.spec.replicaId} ${phase}`);
    this.fakes.onEvent();
    for (const listener of this.#listeners) listener();
  }
}
