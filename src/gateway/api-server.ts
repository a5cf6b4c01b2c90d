/**
 * The API server: gateway and control plane. REST (OIP v2 + the seed's routes) and gRPC
 * ingress share one forwarder; the registry drops replicas that stop heartbeating.
 */
import { createServer } from "node:http";
import { GrpcFrontend } from "../frontend/grpc.js";
import { FastIngress, llhttpAvailable } from "../frontend/fast-ingress/ingress.js";
import { hardenServer, serverOptions } from "../util/http.js";
import { RestFrontend } from "../frontend/rest.js";
import type { RouteHandler } from "../util/http.js";
import { closeServer, listen } from "../util/http.js";
import { createLogger, type Logger } from "../util/logger.js";
import { VERSION } from "../version.js";
import { dashboardRoutes } from "../dashboard/routes.js";
import { metricsRoute } from "../metrics/exposition.js";
import { GatewayMetrics } from "./metrics.js";
import { controlRoutes } from "./control.js";
import { managementRoutes } from "./management.js";
import { ServiceStats } from "./service-stats.js";
import { StatusModel } from "./status.js";
import { Forwarder, type ResilienceOptions } from "./forwarder.js";
import { HealthChecker } from "./health-checker.js";
import { ServicePolicies, type PolicyFields } from "./policies.js";
import { Registry } from "../routing/registry.js";
import { RouteTable } from "./route-table.js";

export interface ApiServerOptions {
  host?: string;
  /** REST port; 0 = any free port. */
  port?: number;
  /** gRPC ingress port; undefined = no gRPC ingress, 0 = any free port. */
  grpcPort?: number;
  /** Control-plane bearer token (also required by replicas' frame endpoints). */
  token?: string;
  unmatched?: "error" | "delegate";
  maxDelegationDepth?: number;
  maxBodyBytes?: number;
  /** Time a request gets when the client sets none (ms). */
  requestTimeoutMs?: number;
  /** Heartbeat interval assumed for replicas that do not say theirs (ms). */
  heartbeatIntervalMs?: number;
  logger?: Logger;
  /** Balancing and failover for replicas whose service has no policy set (default: power_of_two, no failover). */
  defaultPolicy?: PolicyFields;
  /** Outlier ejection, circuit breaking and retry budget settings. */
  resilience?: ResilienceOptions;
  /** Prometheus metrics at /metrics and request statistics for the status API (default true). */
  metrics?: boolean;
  /** More routes by "METHOD /path" (the deployment controller's, for `anyserve up`). */
  routes?: Record<string, RouteHandler>;
  /**
   * Serve the REST port with the fast ingress (raw sockets and Node's llhttp; the inference routes
   * answered without node:http's request objects, everything else handed to node:http). Default false.
   */
  fastIngress?: boolean;
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
  /** Undefined when started with `metrics: false`. */
  readonly metrics: GatewayMetrics | undefined;
  close(): Promise<void>;
}

export async function startApiServer(o: ApiServerOptions = {}): Promise<RunningApiServer> {
  const host = o.host ?? "127.0.0.1";
  const logger = o.logger ?? createLogger("api-server");
  const registry = new Registry();
  const policies = new ServicePolicies(o.defaultPolicy);
  const token = o.token;
  const maxBodyBytes = o.maxBodyBytes ?? 64 * 1024 * 1024;
  const timeoutMs = o.requestTimeoutMs ?? 60_000;
  const forwarder = new Forwarder({
    registry,
    policies,
    unmatched: o.unmatched ?? "error",
    maxDelegationDepth: o.maxDelegationDepth ?? 1,
    token,
    ...(o.resilience ? { resilience: o.resilience } : {}),
  });
  const metrics = o.metrics === false ? undefined : new GatewayMetrics({ registry, forwarder, policies });
  forwarder.observer = metrics;
  const stats = new ServiceStats(metrics);
  const status = new StatusModel({ registry, policies, forwarder, stats });
  const health = new HealthChecker({ registry, policies, logger, probe: (entry, timeoutMs) => forwarder.probe(entry, timeoutMs) });
  const maxTimeoutMs = Math.max(timeoutMs, 3_600_000);
  const onRejected = metrics ? (code: string) => metrics.rejected(code) : undefined;
  const rest = new RestFrontend({
    backend: forwarder,
    logger,
    serverName: "anyserve",
    version: VERSION,
    maxBodyBytes,
    defaultTimeoutMs: timeoutMs,
    maxTimeoutMs,
    ...(onRejected ? { onRejected } : {}),
    routes: {
      ...controlRoutes({ registry, policies, forwarder, token, defaultHeartbeatMs: o.heartbeatIntervalMs ?? 5_000 }),
      ...managementRoutes({ status, registry, token }),
      ...new RouteTable({ registry, policies, token }).routes(),
      ...dashboardRoutes(),
      ...(metrics ? { "GET /metrics": metricsRoute(metrics.registry) } : {}),
      ...o.routes,
    },
  });
  const server = createServer(serverOptions(), rest.listener);
  hardenServer(server);
  let ingress: FastIngress | undefined;
  let port: number;
  if (o.fastIngress && !llhttpAvailable)
    logger.warn("this Node has no usable llhttp binding: the fast ingress is off, node:http serves the REST port");
  if (o.fastIngress && llhttpAvailable) {
    // node:http keeps every non-hot request: handed fresh connections, and relayed ones over loopback.
    await listen(server, 0, "127.0.0.1");
    ingress = new FastIngress({
      backend: forwarder,
      httpServer: server,
      maxBodyBytes,
      defaultTimeoutMs: timeoutMs,
      maxTimeoutMs,
      logger,
      ...(onRejected ? { onRejected } : {}),
    });
    port = await ingress.listen(o.port ?? 0, host);
  } else {
    port = await listen(server, o.port ?? 0, host);
  }
  let grpc: GrpcFrontend | undefined;
  let grpcAddress: string | undefined;
  const hostForUrl = host.includes(":") ? `[${host}]` : host;
  if (o.grpcPort !== undefined) {
    grpc = new GrpcFrontend({
      backend: forwarder,
      logger,
      maxBodyBytes,
      defaultTimeoutMs: timeoutMs,
      serverName: "anyserve",
      version: VERSION,
      ...(onRejected ? { onRejected } : {}),
    });
    grpcAddress = `${hostForUrl}:${await grpc.listen(host, o.grpcPort)}`;
  }
  // Expiry runs often so a dead replica leaves within its 3 intervals, whatever they are.
  const expiry = setInterval(() => {
    for (const id of registry.expire()) logger.warn({ replica: id }, "replica stopped heartbeating; removed");
  }, 100);
  expiry.unref();
  health.start();
  stats.start();
  registry.onChange((event, entry) => logger.info({ replica: entry.replicaId, endpoint: entry.httpEndpoint }, event));
  const url = `http://${hostForUrl}:${port}`;
  logger.info({ url, grpc: grpcAddress, ingress: ingress ? "fast" : "node:http" }, "API server listening");
  return {
    url,
    grpcAddress,
    registry,
    policies,
    forwarder,
    status,
    metrics,
    async close() {
      clearInterval(expiry);
      health.stop();
      stats.stop();
      await Promise.all([ingress?.close(), closeServer(server), grpc?.close()]);
      await forwarder.close();
    },
  };
}
