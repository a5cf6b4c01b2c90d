/**
 * The API server: gateway and control plane. REST (OIP v2 + the seed's routes) and gRPC
 * ingress share one forwarder; the registry drops replicas that stop heartbeating.
 */
import { openAiRoutes } from "./openai.js";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { createServer as createHttpsServer } from "node:https";
import type { FastIngress } from "../frontend/fast-ingress/ingress.js";
import type { GrpcFrontend } from "../frontend/grpc.js";
import { answerWithoutUpgrade, hardenServer, serverOptions } from "../util/http.js";
import { guardWrites } from "../util/write-guard.js";
import { RestFrontend } from "../frontend/rest.js";
import type { RouteHandler } from "../util/http.js";
import { closeServer, listen } from "../util/http.js";
import { createLogger, type Logger } from "../util/logger.js";
import { VERSION } from "../version.js";
import { dashboardRoutes } from "../dashboard/routes.js";
import type { GatewayMetrics } from "./metrics.js";
import { controlRoutes } from "./control.js";
import { managementRoutes } from "./management.js";
import { ServiceStats } from "./service-stats.js";
import { StatusModel } from "./status.js";
import { DEFAULT_STALL_MS, Forwarder, type ResilienceOptions } from "./forwarder.js";
import { HealthChecker } from "./health-checker.js";
import { ServicePolicies, type PolicyFields } from "./policies.js";
import { Registry } from "../routing/registry.js";
import { RouteTable } from "./route-table.js";
import { ColdStarts } from "./cold-start.js";
import { Access } from "./access.js";
import { RegistrationGate, type RegistrationLimits } from "./registrations.js";
import { dataPlaneAuth, type DataPlaneAuth } from "../util/auth.js";
import type { ServerTls } from "../util/tls.js";
import { BodyBudget } from "../util/body-budget.js";

export interface ApiServerOptions {
  host?: string;
  /** REST port; 0 = any free port. */
  port?: number;
  /** gRPC ingress port; undefined = no gRPC ingress, 0 = any free port. */
  grpcPort?: number;
  /**
   * Control-plane bearer token: register, heartbeat, unregister and the management actions need
   * it, and it may read everything the read token may. None: those routes are open
   * (docs/security.md). Never sent to a replica.
   */
  token?: string;
  /** A token that may only read: `/registry`, `/route`, `/routes`, `/api/*` reads, `/metrics`. Needs `token`. */
  readToken?: string;
  /** Inference and model routes (REST and gRPC) need this token; none: they are open. */
  inferenceToken?: string;
  /** Serve REST and gRPC over TLS with this certificate and key (the fast ingress is then off). */
  tls?: ServerTls;
  /** CA bundle trusted for replicas that serve TLS, besides the system's. */
  tlsCa?: Buffer;
  /** How many replicas may be registered, and how fast new ids may arrive. */
  registration?: Partial<RegistrationLimits>;
  unmatched?: "error" | "delegate";
  maxDelegationDepth?: number;
  maxBodyBytes?: number;
  /** Bytes of request bodies held at once over all requests (default 1 GiB): past it, 503 SERVER_OVERLOADED. */
  maxBufferedBytes?: number;
  /** Time a request gets when the client sets none (ms). */
  requestTimeoutMs?: number;
  /** Heartbeat interval assumed for replicas that do not say theirs (ms). */
  heartbeatIntervalMs?: number;
  logger?: Logger;
  /** Balancing and failover for replicas whose service has no policy set (default: power_of_two, no failover). */
  defaultPolicy?: PolicyFields;
  /** Outlier ejection, circuit breaking and retry budget settings. */
  resilience?: ResilienceOptions;
  /**
   * For this long after start (ms), a capability nothing matches is 503 `REGISTRY_WARMING_UP`
   * (retryable), not 404: replicas re-register after a restart. `forwarder.endWarmup()` ends it.
   * Default 0 here (code that starts an API server usually starts its replicas next);
   * `anyserve api-server` and `up` use `api_server.warmup` (15 s).
   */
  warmupMs?: number;
  /** Requests in flight with no progress for this long (ms) pass a replica over while another can serve; 0 = off. Default: `api_server.stall_timeout` (5 s). */
  stallMs?: number;
  /** Prometheus metrics at /metrics and request statistics for the status API (default true). */
  metrics?: boolean;
  /** More routes by "METHOD /path" (the deployment controller's, for `anyserve up`), or made with the server's access rules. */
  routes?: Record<string, RouteHandler> | ((access: Access) => Record<string, RouteHandler>);
  /**
   * Serve the REST port with the fast ingress (raw sockets and Node's llhttp; the inference routes
   * answered without node:http's request objects, everything else handed to node:http). Default false.
   */
  fastIngress?: boolean;
  /**
   * A client that takes none of its answer — a stream or a whole one — for this long (ms) is cut:
   * its connection (gRPC: its stream) closes and the call is cancelled. Default 30 s.
   */
  writeTimeoutMs?: number;
}

export interface RunningApiServer {
  readonly url: string;
  readonly grpcAddress: string | undefined;
  readonly registry: Registry;
  /** Per-service balancing/failover/health interval; `anyserve up` sets one per service. */
  readonly policies: ServicePolicies;
  readonly forwarder: Forwarder;
  /** Service status (management API, `anyserve status`, dashboard); `attach()` the deployment controller. */
  readonly status: StatusModel;
  /** Services scaled to zero: what they serve, the requests waiting for their first replica. */
  readonly coldStarts: ColdStarts;
  /** Undefined when started with `metrics: false`. */
  readonly metrics: GatewayMetrics | undefined;
  close(): Promise<void>;
}

export async function startApiServer(o: ApiServerOptions = {}): Promise<RunningApiServer> {
  const parts = await assembleApiServer(o);
  const { url, grpcAddress, ingress, grpc } = await listenApiServer(parts);
  const stopHousekeeping = startHousekeeping(parts);
  parts.logger.info({ url, grpc: grpcAddress, ingress: ingress ? "fast" : "node:http" }, "API server listening");
  const { registry, policies, forwarder, status, metrics, server, coldStarts } = parts;
  return {
    url,
    grpcAddress,
    registry,
    policies,
    forwarder,
    status,
    coldStarts,
    metrics,
    async close() {
      stopHousekeeping();
      parts.unguard();
      await Promise.all([ingress?.close(), closeServer(server), grpc?.close()]);
      await forwarder.close();
    },
  };
}

/** An API server's parts, made and wired but not yet listening. */
interface ApiServerParts {
  o: ApiServerOptions;
  host: string;
  logger: Logger;
  registry: Registry;
  policies: ServicePolicies;
  forwarder: Forwarder;
  metrics: GatewayMetrics | undefined;
  stats: ServiceStats;
  status: StatusModel;
  coldStarts: ColdStarts;
  health: HealthChecker;
  /** The REST front end's node:http (or https) server (behind the fast ingress when that is on). */
  server: Server;
  /** For the fast ingress and gRPC, as the REST front end has them. */
  /** `write_timeout` (ms): clients that stop reading are cut after it. */
  writeTimeoutMs: number;
  /** Stops the node:http server's write guard. */
  unguard: () => void;
  limits: {
    maxBodyBytes: number;
    bodyBudget: BodyBudget;
    defaultTimeoutMs: number;
    maxTimeoutMs: number;
    onRejected?: (code: string) => void;
    auth: DataPlaneAuth;
  };
}

/** `api_server.max_buffered_mb`'s default: request bodies held at once over every request. */
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024 * 1024;

/** Makes the registry, the forwarder, metrics, status, health checks and the REST front end with every route; nothing listens yet. */
async function assembleApiServer(o: ApiServerOptions): Promise<ApiServerParts> {
  const logger = o.logger ?? createLogger("api-server");
  const registry = new Registry();
  const access = new Access({ token: o.token, readToken: o.readToken });
  if (access.open && o.host !== undefined && !isLoopback(o.host)) {
    logger.warn(
      { host: o.host },
      "no control-plane token: anyone who reaches this address can register replicas and manage them (docs/security.md)",
    );
  }
  const gate = new RegistrationGate({ registry, limits: o.registration });
  const policies = new ServicePolicies(o.defaultPolicy);
  const forwarder = new Forwarder({
    registry,
    policies,
    unmatched: o.unmatched ?? "error",
    maxDelegationDepth: o.maxDelegationDepth ?? 1,
    warmupMs: o.warmupMs ?? 0,
    stallMs: o.stallMs ?? DEFAULT_STALL_MS,
    ...(o.tlsCa ? { tlsCa: o.tlsCa } : {}),
    ...(o.resilience ? { resilience: o.resilience } : {}),
  });
  const coldStarts = new ColdStarts(registry);
  forwarder.coldStarts = coldStarts;
  // prom-client is loaded only by an API server that keeps metrics.
  const metrics =
    o.metrics === false ? undefined : new (await import("./metrics.js")).GatewayMetrics({ registry, forwarder, policies, coldStarts });
  forwarder.observer = metrics;
  const stats = new ServiceStats(metrics);
  const status = new StatusModel({ registry, policies, forwarder, stats, coldStarts });
  if (metrics) metrics.deployment = () => status.deployment;
  const health = new HealthChecker({ registry, policies, logger, probe: (entry, timeoutMs) => forwarder.probe(entry, timeoutMs) });
  const defaultTimeoutMs = o.requestTimeoutMs ?? 60_000;
  const limits = {
    maxBodyBytes: o.maxBodyBytes ?? 64 * 1024 * 1024,
    // One budget for every REST request body, both ingresses and the OpenAI routes.
    bodyBudget: new BodyBudget(o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES),
    defaultTimeoutMs,
    maxTimeoutMs: Math.max(defaultTimeoutMs, 3_600_000),
    ...(metrics ? { onRejected: (code: string) => metrics.rejected(code) } : {}),
    // Delegation headers count only from a registered replica showing its secret.
    auth: dataPlaneAuth({ inferenceToken: o.inferenceToken, isReplica: (c) => gate.isReplica(c) }),
  };
  const rest = new RestFrontend({
    backend: forwarder,
    logger,
    serverName: "anyserve",
    version: VERSION,
    ...limits,
    routes: {
      ...controlRoutes({ registry, policies, forwarder, coldStarts, access, gate, defaultHeartbeatMs: o.heartbeatIntervalMs ?? 5_000 }),
      ...managementRoutes({ status, registry, access, ca: o.tlsCa }),
      ...new RouteTable({ registry, policies, access }).routes(),
      ...dashboardRoutes(),
      ...openAiRoutes({ backend: forwarder, registry, ...limits }),
      ...(metrics ? { "GET /metrics": access.guardRead("GET /metrics", metrics.route()) } : {}),
      ...(typeof o.routes === "function" ? o.routes(access) : o.routes),
    },
  });
  const server = o.tls
    ? (createHttpsServer({ ...serverOptions(), ...o.tls }, rest.listener) as unknown as Server)
    : createServer(serverOptions(), rest.listener);
  hardenServer(server);
  // The API server upgrades nothing. Without an 'upgrade' listener node:http answers an upgrade
  // offer as a request but stops parsing after its head (the body and requests pipelined behind it
  // are never read, the connection hangs on keep-alive): answer it as the plain request it also is.
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => answerWithoutUpgrade(server, req, socket, head));
  const writeTimeoutMs = o.writeTimeoutMs ?? 30_000;
  const unguard = guardWrites(server, writeTimeoutMs);
  const host = o.host ?? "127.0.0.1";
  return {
    o,
    host,
    logger,
    registry,
    policies,
    forwarder,
    metrics,
    stats,
    status,
    coldStarts,
    health,
    server,
    limits,
    writeTimeoutMs,
    unguard,
  };
}

/**
 * Binds the REST port — node:http itself, or the fast ingress in front of it — and the gRPC
 * ingress when a port is given. The fast ingress and gRPC are loaded only when asked for.
 */
async function listenApiServer(
  p: ApiServerParts,
): Promise<{ url: string; grpcAddress: string | undefined; ingress: FastIngress | undefined; grpc: GrpcFrontend | undefined }> {
  const { o, host, logger, server, forwarder, limits, writeTimeoutMs } = p;
  if (o.fastIngress && o.tls) logger.warn("the fast ingress does not serve TLS: node:https serves the REST port");
  const fast = o.fastIngress && !o.tls ? await import("../frontend/fast-ingress/ingress.js") : undefined;
  if (fast && !fast.llhttpAvailable)
    logger.warn("this Node has no usable llhttp binding: the fast ingress is off, node:http serves the REST port");
  let ingress: FastIngress | undefined;
  let port: number;
  if (fast?.llhttpAvailable) {
    // node:http keeps every non-hot request: handed fresh connections, and relayed ones over loopback.
    await listen(server, 0, "127.0.0.1");
    ingress = new fast.FastIngress({ backend: forwarder, httpServer: server, logger, writeTimeoutMs, ...limits });
    port = await ingress.listen(o.port ?? 0, host);
  } else {
    port = await listen(server, o.port ?? 0, host);
  }
  const hostForUrl = host.includes(":") ? `[${host}]` : host;
  const url = `${o.tls ? "https" : "http"}://${hostForUrl}:${port}`;
  if (o.grpcPort === undefined) return { url, grpcAddress: undefined, ingress, grpc: undefined };
  const { GrpcFrontend } = await import("../frontend/grpc.js");
  const grpc = new GrpcFrontend({
    backend: forwarder,
    logger,
    serverName: "anyserve",
    version: VERSION,
    writeTimeoutMs,
    ...limits,
    ...(o.tls ? { tls: o.tls } : {}),
  });
  const grpcAddress = `${hostForUrl}:${await grpc.listen(host, o.grpcPort)}`;
  return { url, grpcAddress, ingress, grpc };
}

/**
 * Keeps the registry true while the server runs: replicas that stop heartbeating leave, health
 * probes run, request statistics are sampled, and every join and leave is logged. Returns the stop.
 */
function startHousekeeping(p: ApiServerParts): () => void {
  const { registry, logger, health, stats } = p;
  // Expiry runs often so a dead replica leaves within its 3 intervals, whatever they are.
  const expiry = setInterval(() => {
    for (const id of registry.expire()) logger.warn({ replica: id }, "replica stopped heartbeating; removed");
  }, 100);
  expiry.unref();
  health.start();
  stats.start();
  registry.onChange((event, entry) => logger.info({ replica: entry.replicaId, endpoint: entry.httpEndpoint }, event));
  return () => {
    clearInterval(expiry);
    health.stop();
    stats.stop();
  };
}

/** True for addresses only this machine can reach. */
function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
