/**
 * Entry of a worker thread (`multi`, `pool`): loads the app itself, then serves jobs through the
 * shared worker runtime. Started by thread-handle.ts with `workerData` describing what to load.
 */
import { parentPort, workerData } from "node:worker_threads";
import { AnyServeError } from "../errors.js";
import { ObjectStore } from "../objects/store.js";
import type { ObjectStoreOptions } from "../objects/types.js";
import { ApiServerCaller } from "../sdk/caller.js";
import { loadApp } from "../sdk/load-app.js";
import { createLogger } from "../util/logger.js";
import { ThreadOutbox, unpack } from "./thread-port.js";
import { errorMetaOf, Msg, type Meta } from "./worker-protocol.js";
import { WorkerRuntime } from "./worker-runtime.js";

export interface ThreadWorkerData {
  appSpec: string;
  handler: number;
  replicaId: string;
  worker: string;
  apiServer?: string | undefined;
  objects?: ObjectStoreOptions | undefined;
}

const port = parentPort!;
const data = workerData as ThreadWorkerData;
const out = new ThreadOutbox(port);
let runtime: WorkerRuntime | undefined;
const early: [number, number, Meta, Buffer][] = [];

port.on("message", (batch: unknown) =>
  unpack(batch, (type, id, meta, body) => {
    if (runtime) runtime.receive(type, id, meta, body);
    else early.push([type, id, meta, body]);
  }),
);

try {
  const app = await loadApp(data.appSpec);
  const logger = createLogger("worker", { replica: data.replicaId, worker: data.worker });
  const caller = data.apiServer ? new ApiServerCaller(data.apiServer) : undefined;
  const objects = data.objects ? ObjectStore.fromConfig(data.objects) : undefined;
  runtime = new WorkerRuntime({ app, replicaId: data.replicaId, logger, caller, objects }, data.handler, data.worker, out);
  runtime.onStopped = () => {
    out.flush();
    port.close();
  };
  if (await runtime.boot()) for (const m of early.splice(0)) runtime.receive(...m);
} catch (err) {
  out.send(Msg.BOOT_FAILED, 0, errorMetaOf(AnyServeError.from(err, "CAPABILITY_FAILED")));
  out.flush();
}
