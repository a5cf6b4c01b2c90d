/**
 * Entry of a `process` worker: a child process that connects to its strategy's Unix socket,
 * says HELLO, loads the app itself and serves jobs through the shared worker runtime. Everything
 * it needs comes from ANYSERVE_WORKER_* environment variables (docs/worker-protocol.md).
 */
import { connect } from "node:net";
import { AnyServeError } from "../errors.js";
import type { ObjectStoreOptions } from "../objects/types.js";
import { loadServable } from "../models/load.js";
import { readFrames, SocketOutbox } from "./socket-port.js";
import { errorMetaOf, Msg, WORKER_PROTOCOL_VERSION, type Meta } from "./worker-protocol.js";
import { workerEnv } from "./worker-env.js";
import { ReplicaCaller } from "./replica-caller.js";
import { ReplicaObjects } from "./replica-objects.js";
import { WorkerRuntime } from "./worker-runtime.js";

const env = process.env;
const name = env.ANYSERVE_WORKER_NAME ?? `process-${process.pid}`;
const socket = connect(env.ANYSERVE_WORKER_SOCKET ?? "");
const out = new SocketOutbox(socket);
let runtime: WorkerRuntime | undefined;
const early: [number, number, Meta, Buffer][] = [];

// Without its strategy there is nothing to serve: a closed socket ends the worker.
socket.on("close", () => process.exit(0));
socket.on("error", () => process.exit(1));
readFrames(socket, (type, id, meta, body) => {
  if (runtime) runtime.receive(type, id, meta, body);
  else early.push([type, id, meta, body]);
});
out.send(Msg.HELLO, 0, { worker: name, key: env.ANYSERVE_WORKER_KEY ?? "", pid: process.pid, protocol: WORKER_PROTOCOL_VERSION });

try {
  const args = env.ANYSERVE_WORKER_SERVICE_ARGS ? (JSON.parse(env.ANYSERVE_WORKER_SERVICE_ARGS) as unknown[]) : [];
  const app = await loadServable(env.ANYSERVE_WORKER_APP ?? "", { args });
  const replicaId = env.ANYSERVE_WORKER_REPLICA_ID ?? "";
  const objects = env.ANYSERVE_WORKER_OBJECTS ? (JSON.parse(env.ANYSERVE_WORKER_OBJECTS) as ObjectStoreOptions) : undefined;
  // Objects owned by other replicas are read through the replica (FETCH), with its credentials.
  const remoteObjects = objects
    ? new ReplicaObjects({
        send: (type, id, meta, body) => {
          out.send(type, id, meta, body);
          out.flush();
        },
        job: () => runtime?.runningJob,
      })
    : undefined;
  const runEnv = workerEnv({
    app,
    replicaId,
    worker: name,
    apiServer: env.ANYSERVE_API_SERVER ? env.ANYSERVE_API_SERVER.split(",") : undefined,
    objects: objects && { ...objects, remote: remoteObjects },
  });
  // ctx.call and ctx.callStream through the replica (CALL, CALL_STREAM), with its credentials.
  const calls = runEnv.caller
    ? new ReplicaCaller({
        send: (type, id, meta, body) => {
          out.send(type, id, meta, body);
          out.flush();
        },
        job: () => runtime?.runningJob,
      })
    : undefined;
  if (calls) runEnv.caller = calls;
  runtime = new WorkerRuntime(runEnv, name, out);
  runtime.onAnswer = (type, id, meta, body) => {
    if (type === Msg.CALL_RESULT) calls?.answer(id, meta, body);
    else if (type === Msg.CALL_CHUNK || type === Msg.CALL_END) calls?.streamed(type, id, meta, body);
    else if (type === Msg.FETCHED) remoteObjects?.answer(id, meta, body);
    else if (type === Msg.FETCH_CHUNK || type === Msg.FETCH_END) remoteObjects?.streamed(type, id, meta, body);
  };
  // Streams a handler left open (calls, object reads) are cancelled when its job ends.
  runtime.onJobEnd = (id) => {
    calls?.jobEnded(id);
    remoteObjects?.jobEnded(id);
  };
  runtime.onStopped = () => socket.end(() => process.exit(0));
  runtime.boot();
  for (const m of early.splice(0)) runtime.receive(...m);
} catch (err) {
  out.send(Msg.BOOT_FAILED, 0, errorMetaOf(AnyServeError.from(err, "CAPABILITY_FAILED")));
  out.flush();
}
