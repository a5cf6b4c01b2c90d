/** `anyserve api-server`: the gateway and control plane. */
import type { Command } from "commander";
import { startApiServer } from "../gateway/api-server.js";
import { BALANCER_NAMES } from "../routing/balancers/index.js";
import { type ApiServerConfig, apiServerSchema } from "../config/schema.js";
import { readCa, readServerTls, type ServerTls } from "../util/tls.js";
import { policyFieldsOf, resilienceOf } from "../deploy/gateway-options.js";
import { loadDeploymentFile } from "../deploy/load.js";
import { kubernetesRoutes, noControllerRoutes } from "../deploy/routes.js";
import { KubernetesScaler, kubernetesPlacement, NAMESPACE_ENV } from "../deploy/kubernetes/scale.js";
import type { DeploymentFile } from "../config/schema.js";
import type { Access } from "../gateway/access.js";
import type { RouteHandler } from "../util/http.js";
import { announceReady, intOption, nonNegativeSeconds, onShutdown, positiveOption, secondsOption } from "./common.js";

/** The deployment file's `api_server` defaults: the flags' defaults are the same ones. */
const DEFAULTS = apiServerSchema.parse({});

interface ApiServerFlags {
  port: number;
  grpcPort?: number;
  host: string;
  token?: string;
  unmatched: string;
  maxDelegationDepth: number;
  requestTimeout: number;
  maxBodyMb: number;
  maxBufferedMb: number;
  loadBalancing: string;
  failover?: boolean;
  healthCheckInterval?: number;
  metrics: boolean;
  fastIngress?: boolean;
  writeTimeout: number;
  warmup: number;
  stallTimeout: number;
  readToken?: string;
  inferenceToken?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  maxReplicas: number;
  registrationRate: number;
  deployment?: string;
}

export function registerApiServerCommand(program: Command): void {
  program
    .command("api-server")
    .description("run the API server: capability registry, router and OIP v2 gateway (REST, and gRPC with --grpc-port)")
    .option("--port <port>", "REST port (0 = any free port)", intOption("--port", 0, 65535), 8080)
    .option("--grpc-port <port>", "gRPC ingress port (0 = any free port; off when not given)", intOption("--grpc-port", 0, 65535))
    .option("--host <host>", "address to bind", "127.0.0.1")
    .option("--token <token>", "control-plane token: registering and managing replicas need it (default: $ANYSERVE_TOKEN)")
    .option("--read-token <token>", "a token that may only read the registry and status (default: $ANYSERVE_READ_TOKEN)")
    .option("--inference-token <token>", "inference and model routes need this token (default: $ANYSERVE_INFERENCE_TOKEN)")
    .option("--tls-cert <file>", "serve REST and gRPC over TLS with this certificate chain (PEM); needs --tls-key")
    .option("--tls-key <file>", "the private key of --tls-cert (PEM)")
    .option("--tls-ca <file>", "CA bundle (PEM) trusted for replicas that serve TLS, besides the system's")
    .option("--max-replicas <n>", "replicas the registry holds at most", intOption("--max-replicas", 1, 1_000_000), 1024)
    .option("--registration-rate <n>", "new replica ids accepted per second", positiveOption("--registration-rate"), 100)
    .option("--unmatched <mode>", "when nothing matches: 'error' (404) or 'delegate' (random replica, seed scenario 2)", "error")
    .option("--max-delegation-depth <n>", "delegation hops allowed", intOption("--max-delegation-depth", 0, 16), 1)
    .option("--request-timeout <seconds>", "time a request gets when the client sets none", secondsOption("--request-timeout"), 60)
    .option("--max-body-mb <mb>", "largest request body", intOption("--max-body-mb", 1, 4096), 64)
    .option(
      "--max-buffered-mb <mb>",
      "request bodies held at once over all requests (503 SERVER_OVERLOADED past it)",
      intOption("--max-buffered-mb", 1, 1_048_576),
      DEFAULTS.max_buffered_mb,
    )
    .option("--load-balancing <strategy>", `balancing strategy for replicas: ${BALANCER_NAMES.join(", ")}`, "power_of_two")
    .option("--failover", "retry requests that were not delivered (or got a retryable error) on another replica")
    .option("--no-metrics", "no Prometheus metrics (/metrics) and no request statistics (status API)")
    .option(
      "--fast-ingress",
      "serve REST with the fast ingress: raw sockets and Node's llhttp for the inference routes, node:http for the rest",
    )
    .option(
      "--deployment <file>",
      "take the api_server block's settings and each service's routing policy from this deployment file (what Kubernetes pods mount); --host, --port and --grpc-port still apply",
    )
    .option(
      "--write-timeout <seconds>",
      "a client that takes none of its answer for this long is cut (its call cancelled)",
      secondsOption("--write-timeout"),
      30,
    )
    .option(
      "--warmup <seconds>",
      "after start, answer 503 REGISTRY_WARMING_UP (retryable) instead of 404 for what nothing matches yet: replicas re-register after a restart (0 = off)",
      nonNegativeSeconds("--warmup"),
      DEFAULTS.warmup,
    )
    .option(
      "--stall-timeout <seconds>",
      "pass over a replica holding requests with no progress (no answer, chunk or passed probe) for this long while another can serve (0 = off)",
      nonNegativeSeconds("--stall-timeout"),
      DEFAULTS.stall_timeout,
    )
    .option(
      "--health-check-interval <seconds>",
      "probe each replica this often (default: its heartbeat interval)",
      secondsOption("--health-check-interval"),
    )
    .action(async (o: ApiServerFlags) => {
      if (o.unmatched !== "error" && o.unmatched !== "delegate") {
        program.error(`--unmatched: expected 'error' or 'delegate', got '${o.unmatched}'`);
      }
      if (!BALANCER_NAMES.includes(o.loadBalancing)) {
        program.error(`--load-balancing: expected one of ${BALANCER_NAMES.join(", ")}, got '${o.loadBalancing}'`);
      }
      const token = o.token ?? process.env.ANYSERVE_TOKEN;
      const readToken = o.readToken ?? process.env.ANYSERVE_READ_TOKEN;
      const inferenceToken = o.inferenceToken ?? process.env.ANYSERVE_INFERENCE_TOKEN;
      if (readToken && !token) program.error("--read-token needs --token: without a control-plane token every route is open");
      if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) program.error("--tls-cert and --tls-key go together");
      const tls = tlsOptions(o, program);
      const file =
        o.deployment === undefined ? undefined : await loadDeploymentFile(o.deployment).catch((err: Error) => program.error(err.message));
      const routes = managementRoutes(file, program);
      const server = await startApiServer({
        host: o.host,
        port: o.port,
        unmatched: o.unmatched as "error" | "delegate",
        maxDelegationDepth: o.maxDelegationDepth,
        requestTimeoutMs: o.requestTimeout * 1000,
        maxBodyBytes: o.maxBodyMb * 1024 * 1024,
        maxBufferedBytes: o.maxBufferedMb * 1024 * 1024,
        metrics: o.metrics,
        fastIngress: o.fastIngress ?? false,
        writeTimeoutMs: o.writeTimeout * 1000,
        warmupMs: o.warmup * 1000,
        stallMs: o.stallTimeout * 1000,
        defaultPolicy: {
          load_balancing: o.loadBalancing,
          failover_enabled: o.failover ?? false,
          health_check_interval: o.healthCheckInterval,
        },
        ...(o.grpcPort !== undefined ? { grpcPort: o.grpcPort } : {}),
        ...(token ? { token } : {}),
        ...(readToken ? { readToken } : {}),
        ...(inferenceToken ? { inferenceToken } : {}),
        ...tls,
        registration: { maxReplicas: o.maxReplicas, ratePerSecond: o.registrationRate },
        ...(file ? fromDeploymentFile(file.api_server) : {}),
        routes,
      });
      // Each service's balancing, failover and health interval, as `up` sets them.
      for (const [name, cfg] of Object.entries(file?.services ?? {})) server.policies.set(name, policyFieldsOf(cfg));
      announceReady({ role: "api-server", url: server.url, grpc: server.grpcAddress ?? null });
      onShutdown(() => server.close());
    });
}

/**
 * Who scales here: in a cluster rendered by `anyserve k8s render` (its environment says so:
 * kubernetes/scale.ts), Kubernetes, by the Deployments of the file's services; elsewhere nobody,
 * and scale and apply answer NO_CONTROLLER.
 */
function managementRoutes(file: DeploymentFile | undefined, program: Command): (access: Access) => Record<string, RouteHandler> {
  const where = kubernetesPlacement(process.env);
  if (where === undefined) return noControllerRoutes;
  if (file === undefined) {
    return program.error(`$${NAMESPACE_ENV} is set (an API server pod on Kubernetes): --deployment FILE is needed to know its services`);
  }
  const scaler = new KubernetesScaler({ ...where, file });
  return (access) => kubernetesRoutes(scaler, access);
}

/** The TLS files of the flags, read and checked (a bad one ends the command with its reason). */
function tlsOptions(o: ApiServerFlags, program: Command): { tls?: ServerTls; tlsCa?: Buffer } {
  try {
    return {
      ...(o.tlsCert !== undefined && o.tlsKey !== undefined ? { tls: readServerTls({ cert: o.tlsCert, key: o.tlsKey }) } : {}),
      ...(o.tlsCa !== undefined ? { tlsCa: readCa(o.tlsCa) } : {}),
    };
  } catch (err) {
    return program.error((err as Error).message);
  }
}

/** The API server's settings from a deployment file's `api_server` block (as `up` uses them), but where it listens. */
function fromDeploymentFile(a: ApiServerConfig) {
  return {
    unmatched: a.unmatched,
    maxDelegationDepth: a.max_delegation_depth,
    requestTimeoutMs: a.request_timeout * 1000,
    fastIngress: a.fast_ingress,
    resilience: resilienceOf(a),
    registration: { maxReplicas: a.max_replicas, ratePerSecond: a.registration_rate },
    warmupMs: a.warmup * 1000,
    stallMs: a.stall_timeout * 1000,
    writeTimeoutMs: a.write_timeout * 1000,
    maxBufferedBytes: a.max_buffered_mb * 1024 * 1024,
  };
}
