/**
 * `process`: `thread_count` child processes, each loading the app, speaking the framed worker
 * protocol over a Unix socket (docs/worker-protocol.md). Crash isolation and separate heaps: a
 * handler that calls `process.exit`, segfaults in a native addon or leaks memory takes down only
 * its process. Costs more than threads: a Node start-up per worker and body copies over the socket.
 */
import type { StrategyOptions } from "./base.js";
import { ProcessSpawner } from "./process-handle.js";
import { GroupStrategy, PIPELINE_DEPTH, requireAppSpec } from "./threads.js";
import { WorkerGroup } from "./worker-group.js";
import { workerStoreConfig } from "./threads.js";

class ProcessStrategy extends GroupStrategy {
  readonly #spawner: ProcessSpawner;

  constructor(spawner: ProcessSpawner, group: WorkerGroup) {
    super("process", group, () => spawner.close());
    this.#spawner = spawner;
  }

  override async start(): Promise<void> {
    await this.#spawner.listen();
    try {
      await super.start();
    } catch (err) {
      await this.stop().catch(() => undefined); // the socket and its directory go with it
      throw err;
    }
  }
}

export function createProcess(o: StrategyOptions): GroupStrategy {
  const n = Math.max(1, o.threads);
  const spawner = new ProcessSpawner({
    appSpec: requireAppSpec("process", o),
    handler: o.handler,
    replicaId: o.env.replicaId,
    apiServer: o.apiServer,
    memoryMb: o.memoryMb,
    workerEnv: o.workerEnv,
    objects: workerStoreConfig(o.env.objects),
  });
  const group = new WorkerGroup({
    name: "process",
    kind: "process",
    spawn: spawner.spawn,
    min: n,
    max: n,
    depth: PIPELINE_DEPTH,
    graceMs: o.graceMs,
    startRetries: o.startRetries,
    idleMs: o.poolIdleMs,
    logger: o.env.logger,
    onFailed: o.onFailed,
  });
  return new ProcessStrategy(spawner, group);
}
