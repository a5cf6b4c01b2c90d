/** `anyserve start`: one replica serving one app. */
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { ObjectStore } from "../objects/store.js";
import { addExecutionOptions, executionFromFlags, type ExecutionFlags } from "../execution/cli-options.js";
import { startReplica } from "../replica/replica.js";
import { loadApp } from "../sdk/load-app.js";
import { announceReady, intOption, onShutdown, secondsOption } from "./common.js";

interface StartOptions extends ExecutionFlags {
  app: string;
  port: number;
  httpPort: number;
  host: string;
  apiServer?: string;
  replicaId?: string;
  objectStore: string;
  objectMaxMb: number;
  objectStoreMaxGb: number;
  objectCache?: boolean;
  token?: string;
  heartbeatInterval: number;
  timeout: number;
  maxBodyMb: number;
  service?: string;
  node?: string;
  /** false with --no-metrics. */
  metrics: boolean;
}

export function registerStartCommand(program: Command): void {
  addExecutionOptions(program.command("start"))
    .description("run a replica: serve an app over OIP v2 (gRPC and REST) and register it with the API server")
    .requiredOption("--app <file[:export]>", "the app module, e.g. ./examples/mvp_demo/chat_app.ts:app (TypeScript loads directly)")
    .option("--port <port>", "gRPC port (0 = any free port)", intOption("--port", 0, 65535), 50051)
    .option("--http-port <port>", "REST port, also used by the API server (0 = any free port)", intOption("--http-port", 0, 65535), 0)
    .option("--host <host>", "address to bind and to register", "127.0.0.1")
    .option("--api-server <url>", "API server to register with, e.g. http://localhost:8080")
    .option("--replica-id <id>", "replica id (default: generated)")
    .option("--object-store <dir>", "object store directory (ctx.objects; served at /objects/{id})", "/tmp/anyserve-objects")
    .option("--object-max-mb <mb>", "largest object", intOption("--object-max-mb", 1, 1 << 20), 2048)
    .option("--object-store-max-gb <gb>", "cap on all objects in the store directory", positiveNumber("--object-store-max-gb"), 10)
    .option("--object-cache", "keep local copies of objects fetched from other replicas")
    .option("--token <token>", "bearer token of the API server (default: $ANYSERVE_TOKEN)")
    .option(
      "--heartbeat-interval <seconds>",
      "heartbeat period; the API server drops a replica after 3 silent periods",
      secondsOption("--heartbeat-interval"),
      5,
    )
    .option("--timeout <seconds>", "the longest a request may run", secondsOption("--timeout"), 30)
    .option("--max-body-mb <mb>", "largest request body", intOption("--max-body-mb", 1, 4096), 64)
    .option("--service <name>", "service name to report in the registry (and to serve a class export under)")
    .option("--node <name>", "node name to report in the registry")
    .option("--no-metrics", "collect no Prometheus metrics and serve no GET /metrics (docs/metrics.md)")
    .action(async (o: StartOptions) => {
      // Worker threads and processes read the service name from the environment, so they agree.
      if (o.service) process.env.ANYSERVE_SERVICE = o.service;
      const app = await loadApp(o.app, o.service ? { service: o.service } : {});
      const token = o.token ?? process.env.ANYSERVE_TOKEN;
      const objectStore = new ObjectStore({
        dir: o.objectStore,
        maxObjectBytes: o.objectMaxMb * 1024 * 1024,
        maxTotalBytes: Math.round(o.objectStoreMaxGb * 1024 ** 3),
        cacheRemote: o.objectCache ?? false,
        sweepIntervalSeconds: 60,
        ...(token ? { token } : {}),
      });
      const replica = await startReplica({
        app,
        appSpec: o.app,
        execution: executionFromFlags(o),
        objectStore,
        host: o.host,
        port: o.port,
        httpPort: o.httpPort,
        heartbeatIntervalMs: Math.round(o.heartbeatInterval * 1000),
        timeoutMs: o.timeout * 1000,
        maxBodyBytes: o.maxBodyMb * 1024 * 1024,
        metrics: o.metrics,
        ...(o.apiServer ? { apiServer: o.apiServer } : {}),
        ...(o.replicaId ? { replicaId: o.replicaId } : {}),
        ...(token ? { token } : {}),
        ...(o.service ? { service: o.service } : {}),
        ...(o.node ? { node: o.node } : {}),
      });
      announceReady({ role: "replica", replicaId: replica.replicaId, http: replica.httpUrl, grpc: replica.grpcAddress });
      onShutdown(() => replica.stop().finally(() => objectStore.close()));
    });
}

function positiveNumber(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name}: expected a positive number, got '${v}'`);
    return n;
  };
}
