/**
 * A replica: one process serving one app over OIP REST and gRPC, plus the framed endpoint the
 * API server forwards to. It registers with the API server, heartbeats, and on stop drains
 * (new requests go elsewhere, in-flight ones finish) before it unregisters and exits.
 */
import { createServer } from "node:http";
import { GrpcFrontend } from "../frontend/grpc.js";
import { closeServer, hardenServer, listen, serverOptions, sendJson } from "../util/http.js";
import { RestFrontend } from "../frontend/rest.js";
import type { AnyServe } from "../sdk/app.js";
import { attachFrameServer } from "../transport/frame-server.js";
import { createLogger, type Logger } from "../util/logger.js";
import { VERSION } from "../version.js";
import { ApiServerCaller } from "../sdk/caller.js";
import { DelegatingBackend } from "./delegation.js";
import { Dispatcher } from "./dispatcher.js";
import type { ExecutionConfig } from "../execution/config.js";
import { workerRoutes } from "./worker-routes.js";
import { withObjectEndpoint } from "../objects/endpoint.js";
import type { ObjectStore } from "../objects/store.js";
import { createFrameHandler } from "./frame-handler.js";
import { metricsRoute } from "../metrics/exposition.js";
import { ReplicaMetrics } from "./metrics.js";
import { RegistrationLoop } from "./registration.js";

export interface ReplicaOptions {
  app: AnyServe;
  replicaId?: string;
  host?: string;
  /** gRPC port (the seed's replica port); 0 = any free port. */
  port?: number;
  /** REST + frames port; 0 = any free port. */
  httpPort?: number;
  /** Where to register; without it the replica serves direct callers only. */
  apiServer?: string;
  token?: string;
  heartbeatIntervalMs?: number;
  maxBodyBytes?: number;
  /** The service's request timeout (ms). */
  timeoutMs?: number;
  /** How long in-flight requests may take to finish on stop (ms). */
  drainTimeoutMs?: number;
  service?: string;
  node?: string;
  logger?: Logger;
  /** `FILE[:export]` the app was loaded from: thread and process workers load it themselves. */
  appSpec?: string;
  /** Execution strategy, sizes, queue, batching, idle timeout (docs/execution.md); defaults in execution/config.ts. */
  execution?: Partial<ExecutionConfig>;
  /** The store handlers get as `ctx.objects`; also served at `GET|HEAD /objects/{id}` (docs/objects.md). */
  objectStore?: ObjectStore;
  /** Prometheus metrics at `GET /metrics` (docs/metrics.md); false: none are collected and the route is 404. Default true. */
  metrics?: boolean;
}

export interface RunningReplica {
  readonly replicaId: string;
  /** `http://host:port` of REST and frames. */
  readonly httpUrl: string;
  /** `host:port` of gRPC. */
  readonly grpcAddress: string;
  readonly dispatcher: Dispatcher;
  /** Undefined with `metrics: false`. */
  readonly metrics: ReplicaMetrics | undefined;
  readonly registration: RegistrationLoop | undefined;
  /** Drains, unregisters and closes everything. */
  stop(): Promise<void>;
}

export async function startReplica(o: ReplicaOptions): Promise<RunningReplica> {
  const replicaId = o.replicaId ?? `replica-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const host = o.host ?? "127.0.0.1";
  const logger = o.logger ?? createLogger("replica", { replica: replicaId });
  const timeoutMs = o.timeoutMs ?? 30_000;
  const maxBodyBytes = o.maxBodyBytes ?? 64 * 1024 * 1024;
  // Cross-replica calls (direct to the callee by default, sdk/caller.ts) and delegation need the API server.
  const caller = o.apiServer ? new ApiServerCaller(o.apiServer, { token: o.token }) : undefined;
  // Capabilities turning warm/cold/failed re-register; set once the registration loop exists.
  let onStateChange = (): void => undefined;
  const metrics = o.metrics === false ? undefined : new ReplicaMetrics({ replicaId, service: o.service, objectStore: o.objectStore });
  const dispatcher = new Dispatcher({
    app: o.app,
    appSpec: o.appSpec,
    apiServer: o.apiServer,
    execution: o.execution,
    onStateChange: () => onStateChange(),
    replicaId,
    logger,
    maxTimeoutMs: timeoutMs,
    metrics,
    ...(caller ? { caller } : {}),
    ...(o.objectStore ? { objects: o.objectStore } : {}),
  });
  // Eager capabilities start their workers (onStart) while the servers come up.
  const started = dispatcher.start();
  const backend = o.apiServer
    ? new DelegatingBackend(dispatcher, {
        apiServer: o.apiServer,
        replicaId,
        token: o.token,
        canServe: (q) => o.app.handlerFor(q) !== undefined,
      })
    : dispatcher;

  const rest = new RestFrontend({
    backend,
    logger,
    serverName: "anyserve-replica",
    version: VERSION,
    maxBodyBytes,
    defaultTimeoutMs: timeoutMs,
    maxTimeoutMs: timeoutMs,
    routes: {
      ...workerRoutes(dispatcher, o.token),
      ...(metrics ? { "GET /metrics": metricsRoute(metrics.registry) } : {}),
      "GET /health": (_q, res) =>
        sendJson(res, dispatcher.ready() ? 200 : 503, {
          status: dispatcher.ready() ? "healthy" : "draining",
          replica_id: replicaId,
          in_flight: dispatcher.inFlight,
          capabilities: o.app.getCapabilities(),
        }),
    },
  });
  const listener = o.objectStore ? withObjectEndpoint(rest.listener, { store: o.objectStore, token: o.token }) : rest.listener;
  const server = createServer(serverOptions(), listener);
  hardenServer(server);
  const frames = attachFrameServer(
    server,
    createFrameHandler(backend, () => dispatcher.health()),
    o.token ? { token: o.token } : {},
  );
  const httpPort = await listen(server, o.httpPort ?? 0, host);
  const grpc = new GrpcFrontend({
    backend,
    logger,
    maxBodyBytes,
    defaultTimeoutMs: timeoutMs,
    serverName: "anyserve-replica",
    version: VERSION,
  });
  const grpcPort = await grpc.listen(host, o.port ?? 0);

  const hostForUrl = host.includes(":") ? `[${host}]` : host;
  const httpUrl = `http://${hostForUrl}:${httpPort}`;
  const grpcAddress = `${hostForUrl}:${grpcPort}`;
  // Refs made here name this replica and its endpoint; owners of other refs are looked up in the registry.
  o.objectStore?.bindReplica({ replicaId, url: httpUrl }, { apiServer: o.apiServer });
  const heartbeatIntervalMs = o.heartbeatIntervalMs ?? 5_000;
  const registration = o.apiServer
    ? new RegistrationLoop({
        apiServer: o.apiServer,
        token: o.token,
        logger,
        body: () => ({
          replica_id: replicaId,
          endpoint: grpcAddress,
          http_endpoint: httpUrl,
          capabilities: o.app.getCapabilities(),
          states: dispatcher.states(),
          heartbeat_interval_ms: heartbeatIntervalMs,
          ...(o.service ? { service: o.service } : {}),
          ...(o.node ? { node: o.node } : {}),
        }),
      })
    : undefined;
  await started;
  onStateChange = () => void registration?.refresh();
  await registration?.start();
  logger.info({ http: httpUrl, grpc: grpcAddress, capabilities: o.app.getCapabilities() }, "replica serving");

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // Leave the registry first so the API server stops choosing us, then finish what we have.
      await registration?.stop();
      frames.goAway();
      const drainTimeout = o.drainTimeoutMs ?? 30_000;
      // Frames the gateway sent just before it processed our unregister may still be on their way;
      // it closes its connection to us once every request on it is answered, so wait for that
      // (bounded) before refusing new work.
      await until(() => frames.connections === 0, Math.min(drainTimeout, QUIET_WAIT_MS));
      const drained = dispatcher.drain();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, drainTimeout)))]);
      clearTimeout(timer);
      await dispatcher.stop();
      frames.close();
      await Promise.all([closeServer(server), grpc.close()]);
      await Promise.all([caller?.close(), backend instanceof DelegatingBackend ? backend.close() : undefined]);
      logger.info("replica stopped");
    })());

  return { replicaId, httpUrl, grpcAddress, dispatcher, metrics, registration, stop };
}

/** How long a stopping replica waits for gateways to close their frame connections. */
const QUIET_WAIT_MS = 5_000;

function until(check: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const end = Date.now() + timeoutMs;
    const poll = (): void => {
      if (check() || Date.now() >= end) resolve();
      else setTimeout(poll, 20);
    };
    poll();
  });
}
