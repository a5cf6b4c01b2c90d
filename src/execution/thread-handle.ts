/**
 * A worker thread (`node:worker_threads`) behind the WorkerHandle interface. The thread loads the
 * app itself (worker-thread.ts); `memory_mb` becomes its `resourceLimits.maxOldGenerationSizeMb`.
 */
import { Worker } from "node:worker_threads";
import type { WorkerExit, WorkerHandle } from "./handle.js";
import { workerEntry } from "./handle.js";
import { ThreadOutbox, unpack } from "./thread-port.js";
import type { Meta } from "./worker-protocol.js";
import type { ThreadWorkerData } from "./worker-thread.js";
import type { ObjectStoreOptions } from "../objects/types.js";
import type { CallerAuth, WorkerService } from "./base.js";

export interface ThreadSpawnOptions {
  appSpec: string;
  replicaId: string;
  apiServer?: string | readonly string[] | undefined;
  callerAuth?: CallerAuth | undefined;
  memoryMb?: number | undefined;
  /** The object store to open in the thread (includes its peer token: threads share the process). */
  objects?: ObjectStoreOptions | undefined;
  service?: WorkerService | undefined;
}

const entry = workerEntry(import.meta.url, "worker-thread");

/**
 * Node 20 does not apply the parent's module hooks (tsx) to worker threads, so in development the
 * thread starts from a small bootstrap that registers tsx before importing the entry.
 */
function bootstrap(): string {
  const target = JSON.stringify(entry.url.href);
  if (!entry.typescript) return `import(${target});`;
  const tsx = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  return `import(${tsx}).then((m) => { m.register(); return import(${target}); });`;
}

export class ThreadHandle implements WorkerHandle {
  readonly name: string;
  readonly transfersBodies = true;
  readonly #worker: Worker;
  readonly #out: ThreadOutbox;
  #error: Error | undefined;
  #exited = false;
  onMessage: WorkerHandle["onMessage"] = () => undefined;
  onExit: WorkerHandle["onExit"] = () => undefined;

  constructor(name: string, o: ThreadSpawnOptions) {
    this.name = name;
    const workerData: ThreadWorkerData = {
      appSpec: o.appSpec,
      replicaId: o.replicaId,
      worker: name,
      apiServer: o.apiServer,
      callerAuth: o.callerAuth,
      objects: o.objects,
      service: o.service,
    };
    this.#worker = new Worker(bootstrap(), {
      eval: true,
      workerData,
      ...(o.memoryMb ? { resourceLimits: { maxOldGenerationSizeMb: o.memoryMb } } : {}),
    });
    this.#out = new ThreadOutbox(this.#worker);
    this.#worker.on("message", (batch: unknown) => unpack(batch, (type, id, meta, body) => this.onMessage(type, id, meta, body)));
    this.#worker.on("error", (err) => (this.#error = err));
    this.#worker.on("exit", (code) => this.#ended(code));
  }

  send(type: number, id: number, meta: Meta, body?: Buffer): void {
    if (!this.#exited) this.#out.send(type, id, meta, body);
  }

  terminate(): void {
    void this.#worker.terminate();
  }

  #ended(code: number): void {
    if (this.#exited) return;
    this.#exited = true;
    const err = this.#error as (Error & { code?: string }) | undefined;
    const exit: WorkerExit =
      err?.code === "ERR_WORKER_OUT_OF_MEMORY"
        ? { reason: "oom", detail: `worker thread ${this.name} went over its memory limit` }
        : {
            reason: "exit",
            detail: err ? `worker thread ${this.name} failed: ${err.message}` : `worker thread ${this.name} exited with code ${code}`,
          };
    this.onExit(exit);
  }
}
