/**
 * Entry of a worker thread (`multi`, `pool`): loads the app itself, then serves jobs through the
 * shared worker runtime. Started by thread-handle.ts with `workerData` describing what to load.
 */
import { parentPort, workerData } from "node:worker_threads";
import { AnyServeError } from "../errors.js";
import type { ObjectStoreOptions } from "../objects/types.js";
import { loadServable } from "../models/load.js";
import type { CallerAuth, WorkerService } from "./base.js";
import { ThreadOutbox, unpack } from "./thread-port.js";
import { errorMetaOf, Msg, type Meta } from "./worker-protocol.js";
import { workerEnv } from "./worker-env.js";
import { WorkerRuntime } from "./worker-runtime.js";

export interface ThreadWorkerData {
  appSpec: string;
  replicaId: string;
  worker: string;
  apiServer?: string | readonly string[] | undefined;
  callerAuth?: CallerAuth | undefined;
  objects?: ObjectStoreOptions | undefined;
  /** A class service: built with this name and these constructor arguments, as in the replica. */
  service?: WorkerService | undefined;
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
  const app = await loadServable(data.appSpec, data.service ? { service: data.service.name, args: data.service.args } : {});
  const env = workerEnv({
    app,
    replicaId: data.replicaId,
    worker: data.worker,
    apiServer: data.apiServer,
    callerAuth: data.callerAuth,
    objects: data.objects,
  });
  runtime = new WorkerRuntime(env, data.worker, out);
  runtime.onStopped = () => {
    out.flush();
    port.close();
  };
  runtime.boot();
  for (const m of early.splice(0)) runtime.receive(...m);
} catch (err) {
  out.send(Msg.BOOT_FAILED, 0, errorMetaOf(AnyServeError.from(err, "CAPABILITY_FAILED")));
  out.flush();
}
