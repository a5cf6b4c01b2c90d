/**
 * What a worker thread or worker process gives its handlers besides the app: a logger, `ctx.call`
 * and `ctx.objects`. Shared by worker-thread.ts and worker-process.ts.
 *
 * A worker should be ready as soon as its app is loaded (a pool grows under a burst, a lazy
 * capability starts on its first request), so it loads nothing its handlers may never use: the
 * logger is the light one (util/log.ts, not pino), and the caller and the object store are
 * loaded on first use — the caller builds its HTTP client on its first call (sdk/caller.ts), the
 * store is opened on its first operation. test/execution/worker-loads.test.ts checks what a
 * worker of a no-op app loads.
 */
import type { ObjectStoreApi, ObjectStoreOptions } from "../objects/types.js";
import { ApiServerCaller } from "../sdk/caller.js";
import type { AnyServe } from "../sdk/app.js";
import { jsonLogger } from "../util/log.js";
import type { CallerAuth } from "./base.js";
import type { RunEnv } from "./run-task.js";

export interface WorkerEnvOptions {
  app: AnyServe;
  replicaId: string;
  /** The worker's name in logs (`thread-3`, `process-1234`). */
  worker: string;
  /** The API servers `ctx.call` goes through (and whose route table it reads), failing over in order. */
  apiServer?: string | readonly string[] | undefined;
  /** What `ctx.call` carries (worker threads only: base.ts `callerAuth`). */
  callerAuth?: CallerAuth | undefined;
  /** The replica's object store, as data the worker can open again. */
  objects?: ObjectStoreOptions | undefined;
}

export function workerEnv(o: WorkerEnvOptions): RunEnv {
  const logger = jsonLogger("worker", { replica: o.replicaId, worker: o.worker });
  return {
    app: o.app,
    replicaId: o.replicaId,
    logger,
    caller: o.apiServer?.length ? new ApiServerCaller(o.apiServer, { logger, ...o.callerAuth }) : undefined,
    objects: o.objects ? lazyStore(o.objects) : undefined,
  };
}

/** `ctx.objects` in a worker: the replica's store, opened (and its module loaded) on the first operation. */
function lazyStore(config: ObjectStoreOptions): ObjectStoreApi {
  let store: Promise<ObjectStoreApi> | undefined;
  const open = (): Promise<ObjectStoreApi> => (store ??= import("../objects/store.js").then((m) => m.ObjectStore.fromConfig(config)));
  return {
    create: (data, options) => open().then((s) => s.create(data, options)),
    createFromStream: (source, options) => open().then((s) => s.createFromStream(source, options)),
    get: (ref, options) => open().then((s) => s.get(ref, options)),
    getJSON: <T>(ref: Parameters<ObjectStoreApi["getJSON"]>[0], options?: Parameters<ObjectStoreApi["getJSON"]>[1]) =>
      open().then((s) => s.getJSON<T>(ref, options)),
    getValue: (ref, options) => open().then((s) => s.getValue(ref, options)),
    getStream: (ref, options) => open().then((s) => s.getStream(ref, options)),
    stat: (ref, options) => open().then((s) => s.stat(ref, options)),
    exists: (ref, options) => open().then((s) => s.exists(ref, options)),
    delete: (ref) => open().then((s) => s.delete(ref)),
    list: () => open().then((s) => s.list()),
    cleanup: (maxAgeSeconds) => open().then((s) => s.cleanup(maxAgeSeconds)),
    clear: () => open().then((s) => s.clear()),
  };
}
