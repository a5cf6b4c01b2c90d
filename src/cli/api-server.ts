/** `anyserve api-server`: the gateway and control plane. */
import type { Command } from "commander";
import { startApiServer } from "../gateway/api-server.js";
import { BALANCER_NAMES } from "../routing/balancers/index.js";
import { announceReady, intOption, onShutdown, secondsOption } from "./common.js";

interface ApiServerFlags {
  port: number;
  grpcPort?: number;
  host: string;
  token?: string;
  unmatched: string;
  maxDelegationDepth: number;
  requestTimeout: number;
  maxBodyMb: number;
  loadBalancing: string;
  failover?: boolean;
  healthCheckInterval?: number;
  metrics: boolean;
  fastIngress?: boolean;
  writeTimeout: number;
}

export function registerApiServerCommand(program: Command): void {
  program
    .command("api-server")
    .description("run the API server: capability registry, router and OIP v2 gateway (REST, and gRPC with --grpc-port)")
    .option("--port <port>", "REST port (0 = any free port)", intOption("--port", 0, 65535), 8080)
    .option("--grpc-port <port>", "gRPC ingress port (0 = any free port; off when not given)", intOption("--grpc-port", 0, 65535))
    .option("--host <host>", "address to bind", "127.0.0.1")
    .option("--token <token>", "bearer token for control-plane routes (default: $ANYSERVE_TOKEN)")
    .option("--unmatched <mode>", "when nothing matches: 'error' (404) or 'delegate' (random replica, seed scenario 2)", "error")
    .option("--max-delegation-depth <n>", "delegation hops allowed", intOption("--max-delegation-depth", 0, 16), 1)
    .option("--request-timeout <seconds>", "time a request gets when the client sets none", secondsOption("--request-timeout"), 60)
    .option("--max-body-mb <mb>", "largest request body", intOption("--max-body-mb", 1, 4096), 64)
    .option("--load-balancing <strategy>", `balancing strategy for replicas: ${BALANCER_NAMES.join(", ")}`, "power_of_two")
    .option("--failover", "retry requests that were not delivered (or got a retryable error) on another replica")
    .option("--no-metrics", "no Prometheus metrics (/metrics) and no request statistics (status API)")
    .option(
      "--fast-ingress",
      "serve REST with the fast ingress: raw sockets and Node's llhttp for the inference routes, node:http for the rest",
    )
    .option(
      "--write-timeout <seconds>",
      "a client that takes none of its answer for this long is cut (its call cancelled)",
      secondsOption("--write-timeout"),
      30,
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
      const server = await startApiServer({
        host: o.host,
        port: o.port,
        unmatched: o.unmatched as "error" | "delegate",
        maxDelegationDepth: o.maxDelegationDepth,
        requestTimeoutMs: o.requestTimeout * 1000,
        maxBodyBytes: o.maxBodyMb * 1024 * 1024,
        metrics: o.metrics,
        fastIngress: o.fastIngress ?? false,
        writeTimeoutMs: o.writeTimeout * 1000,
        defaultPolicy: {
          load_balancing: o.loadBalancing,
          failover_enabled: o.failover ?? false,
          health_check_interval: o.healthCheckInterval,
        },
        ...(o.grpcPort !== undefined ? { grpcPort: o.grpcPort } : {}),
        ...(token ? { token } : {}),
      });
      announceReady({ role: "api-server", url: server.url, grpc: server.grpcAddress ?? null });
      onShutdown(() => server.close());
    });
}
