/**
 * A replica: one process serving one app over OIP REST and gRPC, plus the framed endpoint the
 * API server forwards to. It registers with the API server, heartbeats, and on stop drains
 * (new requests go elsewhere, in-flight ones finish) before it unregisters and exits.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import { GrpcFrontend } from "../frontend/grpc.js";
import { closeServer, hardenServer, listen, serverOptions, sendJson } from "../util/http.js";
import { guardWrites } from "../util/write-guard.js";
import { RestFrontend } from "../frontend/rest.js";
import type { AnyServe } from "../sdk/app.js";
import { attachFrameServer, FRAMES_PATH, type FrameServerControl } from "../transport/frame-server.js";
import { createLogger, type Logger } from "../util/logger.js";
import { VERSION } from "../version.js";
import { ApiServerCaller } from "../sdk/caller.js";
import { DelegatingBackend } from "./delegation.js";
import { Dispatcher } from "./dispatcher.js";
import type { ResolvedServiceConfig } from "../config/resolve.js";
import type { ServiceConfigInput } from "../config/schema.js";
import { newSecret } from "../util/auth.js";
import type { ServerTls } from "../util/tls.js";
import { ReplicaGuard } from "./guard.js";
import { executionOf, serviceConfigOf } from "./service-config.js";
import { workerRoutes } from "./worker-routes.js";
import { type DrainState, drainRoutes, nextDrainSeq } from "./drain-routes.js";
import { withObjectEndpoint } from "../objects/endpoint.js";
import type { ObjectStore } from "../objects/store.js";
import { createFrameHandler } from "./frame-handler.js";
import type { ReplicaMetrics } from "./metrics.js";
import { type RegistrationBody, RegistrationLoop } from "./registration.js";
import { RegistrationSet } from "./registrations.js";
import { advertisedHost } from "./advertise.js";
import { ApiServers } from "../util/api-servers.js";
import { logServiceModel } from "./service-model.js";
import { BodyBudget } from "../util/body-budget.js";

export interface ReplicaOptions {
  app: AnyServe;
  replicaId?: string;
  host?: string;
  /**
   * Where the API server and other replicas reach this replica: registered, and put in the
   * replica's object refs (default: `host`, or when `host` binds every interface the address of
   * the interface that routes to the API server — `advertise.ts`).
   */
  advertiseHost?: string;
  /** gRPC port (the seed's replica port); 0 = any free port. */
  port?: number;
  /** REST + frames port; 0 = any free port. */
  httpPort?: number;
  /**
   * Where to register; without it the replica serves direct callers only. Several: the replica
   * registers and heartbeats with each (`registrations.ts`); `ctx.call`, delegation, object peer
   * look-ups and the direct path's route watch use one at a time, the first until it fails, then
   * the next (util/api-servers.ts).
   */
  apiServer?: string | readonly string[];
  /**
   * The deployment's control-plane token: the replica registers with it, and it guards `/workers`,
   * `/config` and `/objects`. The replica never sends it to another replica (docs/security.md).
   */
  token?: string;
  /** The deployment's inference token: the replica's inference routes (REST, gRPC, frames from direct callers) need it. */
  inferenceToken?: string;
  /** Serve REST (with the frame endpoint) and gRPC over TLS; the replica registers an `https://` endpoint. */
  tls?: ServerTls;
  /** CA bundle trusted for the API server and other replicas that serve TLS, besides the system's. */
  tlsCa?: Buffer;
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
  /**
   * The service's config: strategy, sizes, queue, batching, timeouts, metrics (docs/config.md), as in
   * a deployment file or already resolved; the schema's defaults for what it leaves out. The
   * separate options above (`timeoutMs`, `maxBodyBytes`, `heartbeatIntervalMs`, `metrics`) win.
   */
  config?: ServiceConfigInput | ResolvedServiceConfig;
  /** The store handlers get as `ctx.objects`; also served at `GET|HEAD /objects/{id}` (docs/objects.md). */
  objectStore?: ObjectStore;
  /** Prometheus metrics at `GET /metrics` (docs/metrics.md); false: none are collected and the route is 404. Default true. */
  metrics?: boolean;
  /** Start drained: registered but out of rotation until undrained (drain-routes.ts). Default false. */
  drained?: boolean;
}

export interface RunningReplica {
  readonly replicaId: string;
  /** `http://host:port` of REST and frames, with the advertised host. */
  readonly httpUrl: string;
  /** `host:port` of gRPC. */
  readonly grpcAddress: string;
  readonly dispatcher: Dispatcher;
  /** Undefined with `metrics: false`. */
  readonly metrics: ReplicaMetrics | undefined;
  readonly registration: RegistrationSet | undefined;
  /** Drains, unregisters and closes everything. */
  stop(): Promise<void>;
}

export async function startReplica(options: ReplicaOptions): Promise<RunningReplica> {
  const apiServers = [options.apiServer ?? []].flat();
  // Registration talks to every API server, advertise-address detection to the first; the rest
  // (ctx.call, delegation, object look-ups) to one at a time, failing over together.
  const o: ReplicaOptions & { apiServer?: string } = { ...options, apiServer: apiServers[0] };
  const parts = await assembleReplica(o, apiServers);
  const addresses = await listenReplica(parts);
  // Refs made here name this replica and its endpoint; owners of other refs are looked up in the
  // registry. Bound before any worker starts: workers open the store as it is when they start.
  o.objectStore?.bindReplica({ replicaId: parts.replicaId, url: addresses.httpUrl }, { apiServer: parts.servers });
  // Eager capabilities start their workers (onStart) before the replica registers.
  await parts.dispatcher.start();
  const registration = await registerReplica(parts, addresses);
  parts.logger.info({ http: addresses.httpUrl, grpc: addresses.grpcAddress, capabilities: o.app.getCapabilities() }, "replica serving");
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= stopReplica(parts, registration));
  const { replicaId, dispatcher, metrics } = parts;
  return { replicaId, ...addresses, dispatcher, metrics, registration, stop };
}

/** A replica's parts, made and wired but not yet listening. */
interface ReplicaParts {
  o: ReplicaOptions & { apiServer?: string | undefined };
  /** Every API server the replica registers with (the first is `o.apiServer`). */
  apiServers: readonly string[];
  /** The one of them `ctx.call`, delegation and object look-ups use now; undefined without any. */
  servers: ApiServers | undefined;
  /** The service's resolved config (reported at `GET /config`). */
  config: ResolvedServiceConfig;
  /** The longest a request may take (ms): `timeoutMs`, else the config's `timeout`. */
  timeoutMs: number;
  replicaId: string;
  host: string;
  logger: Logger;
  dispatcher: Dispatcher;
  backend: Dispatcher | DelegatingBackend;
  metrics: ReplicaMetrics | undefined;
  /** Cross-replica calls (`ctx.call`); needs the API server. */
  caller: ApiServerCaller | undefined;
  /** REST, `GET /health`, `/workers`, `/metrics`, `/objects` and the frame endpoint, on one port. */
  server: Server;
  /** Stops the REST port's write guard (`performance.write_timeout`). */
  unguard: () => void;
  frames: FrameServerControl;
  grpc: GrpcFrontend;
  /** Set once the registration loop exists: capabilities turning warm/cold/failed re-register. */
  onStateChange: () => void;
  /** The replica's own secret: registered with the API server, shown back by the gateway. */
  secret: string;
  guard: ReplicaGuard;
  /** Drained by an operator (`POST /drain`): reported to every API server. */
  drain: DrainState;
}

/** Makes the dispatcher, the backends and the REST, frame and gRPC endpoints; nothing listens yet. */
async function assembleReplica(o: ReplicaParts["o"], apiServers: readonly string[]): Promise<ReplicaParts> {
  const replicaId = o.replicaId ?? `replica-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const config = serviceConfigOf(o.config, o.appSpec);
  const timeoutMs = o.timeoutMs ?? config.performance.timeout * 1000;
  const logger = o.logger ?? createLogger("replica", { replica: replicaId });
  const servers = apiServers.length > 0 ? new ApiServers(apiServers, { logger }) : undefined;
  // Cross-replica calls (direct to the callee by default, sdk/caller.ts) and delegation need the API server.
  const caller = servers
    ? new ApiServerCaller(servers, { token: o.token, inferenceToken: o.inferenceToken, ca: o.tlsCa, logger })
    : undefined;
  const secret = newSecret();
  const guard = new ReplicaGuard({ secret, token: o.token, inferenceToken: o.inferenceToken });
  // prom-client is loaded only by a replica that keeps metrics.
  const metrics =
    (o.metrics ?? config.monitoring.enable_metrics) === false
      ? undefined
      : new (await import("./metrics.js")).ReplicaMetrics({ replicaId, service: o.service, objectStore: o.objectStore });
  // A drain or undrain is sent to the API servers as a state change is (registerReplica sets onStateChange).
  const drain: DrainState = { draining: o.drained ?? false, seq: nextDrainSeq(), changed: () => base.onStateChange() };
  const base = {
    o,
    apiServers,
    servers,
    config,
    timeoutMs,
    replicaId,
    host: o.host ?? "127.0.0.1",
    logger,
    metrics,
    caller,
    onStateChange: (): void => undefined,
    secret,
    guard,
    drain,
  };
  const dispatcher = new Dispatcher({
    app: o.app,
    appSpec: o.appSpec,
    apiServer: apiServers.length > 0 ? apiServers : undefined,
    // Worker threads share this process: their calls carry what the replica's own do (not the
    // control-plane token, which calls do not need).
    callerAuth: { inferenceToken: o.inferenceToken, ca: o.tlsCa },
    execution: executionOf(config),
    onStateChange: () => base.onStateChange(),
    replicaId,
    logger: base.logger,
    maxTimeoutMs: timeoutMs,
    metrics,
    ...(caller ? { caller } : {}),
    ...(o.objectStore ? { objects: o.objectStore } : {}),
  });
  logServiceModel(o.app, config, base.logger);
  const backend = servers
    ? new DelegatingBackend(dispatcher, {
        apiServers: servers,
        replicaId,
        secret,
        ca: o.tlsCa,
        canServe: (_q, call) => dispatcher.canServe(call),
      })
    : dispatcher;
  return Object.assign(base, { dispatcher, backend }, replicaEndpoints(base, dispatcher, backend));
}

/** The REST port (OIP, `/health`, `/workers`, `/metrics`, `/objects`, frames) and the gRPC server, over `backend`. */
function replicaEndpoints(
  p: Pick<ReplicaParts, "o" | "config" | "timeoutMs" | "replicaId" | "logger" | "metrics" | "guard" | "drain">,
  dispatcher: Dispatcher,
  backend: Dispatcher | DelegatingBackend,
): Pick<ReplicaParts, "server" | "frames" | "grpc" | "unguard"> {
  const { o, logger, metrics, timeoutMs, guard } = p;
  const maxBodyBytes = o.maxBodyBytes ?? p.config.performance.max_body_mb * 1024 * 1024;
  // Request bodies held at once over REST, gRPC and the gateway's frames (each is bounded by maxBodyBytes).
  const bodyBudget = new BodyBudget(p.config.performance.max_buffered_mb * 1024 * 1024, "performance.max_buffered_mb");
  const rest = new RestFrontend({
    backend,
    logger,
    serverName: "anyserve-replica",
    version: VERSION,
    maxBodyBytes,
    bodyBudget,
    defaultTimeoutMs: timeoutMs,
    maxTimeoutMs: timeoutMs,
    auth: guard.dataPlane,
    routes: {
      ...workerRoutes(dispatcher, guard),
      ...drainRoutes(p.replicaId, p.drain, guard),
      ...(metrics ? { "GET /metrics": metrics.route() } : {}),
      // The config this replica runs with, resolved: what `up` asked for is what it got.
      "GET /config": (req, res) => {
        guard.control(req, "GET /config");
        sendJson(res, 200, { replica_id: p.replicaId, service: o.service ?? null, config: p.config });
      },
      "GET /health": (_q, res) =>
        sendJson(res, dispatcher.ready() ? 200 : 503, {
          status: dispatcher.ready() ? "healthy" : "draining",
          replica_id: p.replicaId,
          in_flight: dispatcher.inFlight,
          capabilities: o.app.getCapabilities(),
        }),
    },
  });
  const listener = o.objectStore ? withObjectEndpoint(rest.listener, { store: o.objectStore, token: o.token }) : rest.listener;
  const server = o.tls
    ? (createHttpsServer({ ...serverOptions(), ...o.tls }, listener) as unknown as Server)
    : createServer(serverOptions(), listener);
  hardenServer(server);
  // Clients that stop reading are cut (frame connections have their own flow control: CREDIT).
  const writeTimeoutMs = p.config.performance.write_timeout * 1000;
  const unguard = guardWrites(server, writeTimeoutMs);
  const frames = attachFrameServer(
    server,
    createFrameHandler(backend, () => dispatcher.health(), bodyBudget),
    {
      authorize: (authorization) => guard.framePeer(authorization),
    },
  );
  const grpc = new GrpcFrontend({
    backend,
    logger,
    maxBodyBytes,
    bodyBudget,
    defaultTimeoutMs: timeoutMs,
    serverName: "anyserve-replica",
    version: VERSION,
    writeTimeoutMs,
    auth: guard.dataPlane,
    ...(o.tls ? { tls: o.tls } : {}),
  });
  return { server, frames, grpc, unguard };
}

/** Binds REST + frames (`httpPort`) and gRPC (`port`) on `host`; returns where others reach them (the advertised host). */
async function listenReplica(p: ReplicaParts): Promise<{ httpUrl: string; grpcAddress: string }> {
  const httpPort = await listen(p.server, p.o.httpPort ?? 0, p.host);
  const grpcPort = await p.grpc.listen(p.host, p.o.port ?? 0);
  const advertised = await advertisedHost({ host: p.host, advertiseHost: p.o.advertiseHost, apiServer: p.o.apiServer });
  if (advertised !== p.host) p.logger.info({ bind: p.host, advertised }, "advertising an address other than the bound one");
  const hostForUrl = advertised.includes(":") ? `[${advertised}]` : advertised;
  return { httpUrl: `${p.o.tls ? "https" : "http"}://${hostForUrl}:${httpPort}`, grpcAddress: `${hostForUrl}:${grpcPort}` };
}

/** Registers with the API server (when there is one) and keeps the registration alive; state changes re-register. */
async function registerReplica(p: ReplicaParts, at: { httpUrl: string; grpcAddress: string }): Promise<RegistrationSet | undefined> {
  const { o, replicaId, dispatcher } = p;
  if (p.apiServers.length === 0) return undefined;
  const heartbeatIntervalMs = o.heartbeatIntervalMs ?? p.config.monitoring.health_check_interval * 1000;
  const body = (): RegistrationBody => ({
    replica_id: replicaId,
    replica_secret: p.secret,
    endpoint: at.grpcAddress,
    http_endpoint: at.httpUrl,
    capabilities: o.app.getCapabilities(),
    states: dispatcher.states(),
    heartbeat_interval_ms: heartbeatIntervalMs,
    draining: p.drain.draining,
    drain_seq: p.drain.seq,
    ...(o.service ? { service: o.service } : {}),
    ...(o.node ? { node: o.node } : {}),
  });
  const registration = new RegistrationSet(
    p.apiServers,
    (apiServer) => new RegistrationLoop({ apiServer, token: o.token, ca: o.tlsCa, logger: p.logger, body }),
    // A name standing for several API servers (a headless Service): ctx.call, delegation and object
    // look-ups fail over between its addresses too.
    { onTargets: (targets) => p.servers?.update(targets) },
  );
  p.onStateChange = () => void registration.refresh();
  await registration.start();
  // The gateway holds frame connections to every replica it knows (it probes each at once). When
  // one drops, the API server may have restarted and know nobody: check the registration now
  // rather than at the next heartbeat (up to an interval of "not found" for this replica's callers).
  p.server.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
    if ((req.url ?? "").split("?", 1)[0] === FRAMES_PATH) socket.once("close", () => registration.reconnect());
  });
  return registration;
}

/**
 * Leaves the registry first so the API server stops choosing this replica, then finishes what it
 * has: GOAWAY, wait for the gateways to close their connections, drain (bounded), stop the
 * workers, close.
 */
async function stopReplica(p: ReplicaParts, registration: RegistrationSet | undefined): Promise<void> {
  await registration?.stop();
  p.frames.goAway();
  const drainTimeout = p.o.drainTimeoutMs ?? 30_000;
  // Frames the gateway sent just before it processed our unregister may still be on their way;
  // it closes its connection to us once every request on it is answered, so wait for that
  // (bounded) before refusing new work.
  await until(() => p.frames.connections === 0, Math.min(drainTimeout, QUIET_WAIT_MS));
  const drained = p.dispatcher.drain();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, drainTimeout)))]);
  clearTimeout(timer);
  await p.dispatcher.stop();
  p.frames.close();
  p.unguard();
  await Promise.all([closeServer(p.server), p.grpc.close()]);
  await Promise.all([p.caller?.close(), p.backend instanceof DelegatingBackend ? p.backend.close() : undefined]);
  p.logger.info("replica stopped");
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
