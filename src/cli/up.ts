/**
 * `anyserve up FILE`: the embedded default. Runs the API server in this process, starts every
 * service's replicas as child processes with their strategies and sizes, keeps them alive, and
 * stops them all on Ctrl-C/SIGTERM. `anyserve apply FILE` changes a running deployment.
 */
import type { Command } from "commander";
import { DeploymentController } from "../deploy/controller.js";
import { ConfigError, loadDeploymentFile } from "../deploy/load.js";
import { localNode, PlacementError, place } from "../deploy/placement.js";
import { cpuCapper } from "../deploy/cpu-cap.js";
import { type CheckedHandler, checkApps } from "../deploy/check-apps.js";
import { encodeJsonRequest } from "../protocol/json-codec.js";
import { inputsToRequest } from "../protocol/values.js";
import { deploymentRoutes } from "../deploy/routes.js";
import { startApiServer } from "../gateway/api-server.js";
import { resilienceOf } from "../deploy/gateway-options.js";
import { createLogger } from "../util/logger.js";
import { announceReady, intOption, onShutdown } from "./common.js";

interface UpOptions {
  port?: number;
  grpcPort?: number;
  host?: string;
  token?: string;
  nodeName?: string;
  nodeCpus?: number;
  nodeMemoryMb?: number;
  nodeGpus?: number;
}

export function registerUpCommand(program: Command): void {
  program
    .command("up")
    .argument("<file>", "deployment file (anyserve.yaml)")
    .description("run a deployment on this machine: the API server and every service's replicas, kept alive")
    .option("--port <port>", "API server REST port (overrides api_server.port)", intOption("--port", 0, 65535))
    .option("--grpc-port <port>", "API server gRPC port (overrides api_server.grpc_port)", intOption("--grpc-port", 0, 65535))
    .option("--host <host>", "address to bind (overrides api_server.host)")
    .option("--token <token>", "control-plane bearer token (default: $ANYSERVE_TOKEN)")
    .option("--node-name <name>", "this node's name (overrides node.name)")
    .option("--node-cpus <n>", "CPU cores this node offers (overrides node.cpu_cores)", intOption("--node-cpus", 1, 4096))
    .option(
      "--node-memory-mb <mb>",
      "memory this node offers (overrides node.memory_mb)",
      intOption("--node-memory-mb", 1, 16 * 1024 * 1024),
    )
    .option(
      "--node-gpus <n>",
      "GPUs this node offers (overrides node.gpu_count; default: what nvidia-smi -L lists)",
      intOption("--node-gpus", 0, 64),
    )
    .action(async (file: string, o: UpOptions) => {
      const logger = createLogger("anyserve-up");
      const config = await loadDeploymentFile(file).catch(fail);
      const a = config.api_server;
      const node = localNode({
        ...config.node,
        ...(o.nodeName !== undefined ? { name: o.nodeName } : {}),
        ...(o.nodeCpus !== undefined ? { cpu_cores: o.nodeCpus } : {}),
        ...(o.nodeMemoryMb !== undefined ? { memory_mb: o.nodeMemoryMb } : {}),
        ...(o.nodeGpus !== undefined ? { gpu_count: o.nodeGpus } : {}),
      });
      // A deployment that cannot fit, or whose apps cannot load, is refused before any process starts.
      try {
        place(config, node);
      } catch (err) {
        fail(err);
      }
      const served = await checkApps(config, file).catch(fail);
      const token = o.token ?? process.env.ANYSERVE_TOKEN;
      let controller: DeploymentController | undefined;
      const grpcPort = o.grpcPort ?? a.grpc_port;
      const api = await startApiServer({
        host: o.host ?? a.host,
        port: o.port ?? a.port,
        ...(grpcPort !== null ? { grpcPort } : {}),
        unmatched: a.unmatched,
        maxDelegationDepth: a.max_delegation_depth,
        requestTimeoutMs: a.request_timeout * 1000,
        fastIngress: a.fast_ingress,
        writeTimeoutMs: a.write_timeout * 1000,
        resilience: resilienceOf(a),
        ...(token ? { token } : {}),
        logger,
        routes: deploymentRoutes(() => controller!, token),
      });
      const cpu = cpuCapper();
      if (Object.values(config.services).some((s) => s.resources.cpu_cores !== null)) {
        if (cpu.available) logger.info({ how: cpu.how }, "resources.cpu_cores caps each replica's CPU");
        else logger.warn({ reason: cpu.reason }, "resources.cpu_cores is a placement figure only here: replicas' CPU is not capped");
      }
      controller = new DeploymentController({
        apiServerUrl: api.url,
        registry: api.registry,
        policies: api.policies,
        node,
        logger,
        token,
        cpu,
      });
      api.status.attach(controller);
      onShutdown(async () => {
        await controller!.stopAll();
        await api.close();
      });
      const report = await controller.apply(config).catch(async (err: unknown) => {
        await api.close();
        return fail(err);
      });
      printSummary(api.url, api.grpcAddress, controller);
      printTryLines(api.url, Object.values(served).flat());
      announceReady({ role: "up", url: api.url, grpc: api.grpcAddress ?? null, services: report });
    });
}

function printSummary(url: string, grpc: string | undefined, controller: DeploymentController): void {
  const lines = [``, `anyserve is up: API server ${url}${grpc ? ` (gRPC ${grpc})` : ""}`];
  for (const [name, s] of Object.entries(controller.status().services)) {
    if (s.placement === "unschedulable") {
      lines.push(`  ${name}: unschedulable — ${s.reason}`);
      continue;
    }
    const d = s.config.deployment;
    lines.push(
      `  ${name}: ${s.replicas.length} replica(s), ${d.threading_strategy} × ${d.thread_count}, queue ${s.config.performance.queue_size}`,
    );
    for (const r of s.replicas)
      lines.push(`    ${r.replicaId}: ${r.state}${r.http ? ` ${r.http}` : ""}${r.lastExit ? ` (last exit: ${r.lastExit})` : ""}`);
  }
  lines.push(
    `  dashboard: ${url}/dashboard   metrics: ${url}/metrics   status: anyserve status --api-server ${url}`,
    `  registry: ${url}/registry   services: ${url}/api/services   deployment: ${url}/api/deployment`,
    `Ctrl-C stops everything.`,
    ``,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * One first curl per deployed capability (six at most), so a new user can call each right away:
 * with the handler's declared example (a class method's: its parameter names as arguments), else
 * a `text` input, to `/infer/stream` for streaming handlers.
 */
function printTryLines(url: string, handlers: CheckedHandler[]): void {
  const seen = new Set<string>();
  const lines = ["Try:"];
  const headerName = (k: string): string =>
    k
      .split("_")
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join("-");
  for (const h of handlers) {
    const headers = Object.entries(h.capability)
      .map(([k, v]) => `-H 'X-Capability-${headerName(k)}: ${v}'`)
      .join(" ");
    if (seen.has(headers) || seen.size >= 6) continue;
    seen.add(headers);
    const route = h.stream ? "/infer/stream" : "/infer";
    const body = JSON.parse(encodeJsonRequest(inputsToRequest(h.example ?? { text: "hello there" })).body.toString("utf8")) as {
      inputs: unknown;
    };
    const json = JSON.stringify({ inputs: body.inputs }).replaceAll("'", "'\\''");
    lines.push(`  curl -s${h.stream ? "N" : ""} ${url}${route} ${headers} -H 'Content-Type: application/json' \\`, `    -d '${json}'`);
  }
  process.stdout.write(`${lines.join("\n")}\n\n`);
}

function fail(err: unknown): never {
  if (err instanceof ConfigError || err instanceof PlacementError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
