/**
 * `anyserve up FILE`: the embedded default. Runs the API server in this process, starts every
 * service's replicas as child processes with their strategies and sizes, keeps them alive, and
 * stops them all on Ctrl-C/SIGTERM. `anyserve apply FILE` changes a running deployment. The
 * control plane is never open by default: `up` makes the deployment a token (credentials.ts) and
 * hands it to its replicas in their environment.
 */
import path from "node:path";
import type { Command } from "commander";
import type { ApiServerConfig, DeploymentFile } from "../config/schema.js";
import { readCa, readServerTls, type ServerTls } from "../util/tls.js";
import type { Logger } from "../util/log.js";
import { noteRuntime, readOrCreateToken, tokenFileOf } from "./credentials.js";
import { DeploymentController } from "../deploy/controller.js";
import { ConfigError, loadDeploymentDoc, loadDeploymentFile } from "../deploy/load.js";
import { repositoryRoutes } from "../deploy/repository-routes.js";
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
  /** A token; `false` with `--no-token`. */
  token?: string | false;
  tokenFile?: string;
  readToken?: string;
  inferenceToken?: string;
  nodeName?: string;
  nodeCpus?: number;
  nodeMemoryMb?: number;
  nodeGpus?: number;
}

export function registerUpCommand(program: Command): void {
  upOptions(
    program
      .command("up")
      .argument("<file>", "deployment file (anyserve.yaml)")
      .description("run a deployment on this machine: the API server and every service's replicas, kept alive"),
  )
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
    .action((file: string, o: UpOptions) => runUp(file, o, () => loadDeploymentFile(file)));
}

/**
 * `anyserve serve DIR`: `up` of the deployment `{repository: DIR}` — every model of a model
 * repository served, with the OIP repository extension (docs/models.md). The token file and the
 * object store are under `DIR/.anyserve/`.
 */
export function registerServeCommand(program: Command): void {
  const cmd = program
    .command("serve")
    .argument("<dir>", "model repository (Triton's layout: <model>/<version>/model.onnx, optional config.yaml, model.ts or model.py)")
    .description("serve every model of a model repository, with the repository API (load/unload/index)");
  upOptions(cmd).action((dir: string, o: UpOptions) => {
    const file = path.join(path.resolve(dir), "anyserve.yaml");
    return runUp(file, o, async () => loadDeploymentDoc({ repository: "." }, file));
  });
}

/** The options `up` and `serve` share. */
function upOptions(cmd: Command): Command {
  return cmd
    .option("--port <port>", "API server REST port (overrides api_server.port)", intOption("--port", 0, 65535))
    .option("--grpc-port <port>", "API server gRPC port (overrides api_server.grpc_port)", intOption("--grpc-port", 0, 65535))
    .option("--host <host>", "address to bind (overrides api_server.host)")
    .option("--token <token>", "control-plane token (default: $ANYSERVE_TOKEN, else the deployment's token file)")
    .option("--no-token", "no control-plane token: anyone who reaches the API server may register and manage replicas")
    .option("--token-file <file>", "where the control-plane token is kept, made on first use (default: .anyserve/token beside FILE)")
    .option("--read-token <token>", "a token that may only read the registry and status (default: $ANYSERVE_READ_TOKEN)")
    .option("--inference-token <token>", "inference routes need this token, here and on the replicas (default: $ANYSERVE_INFERENCE_TOKEN)");
}

async function runUp(file: string, o: UpOptions, loadConfig: () => Promise<DeploymentFile>): Promise<void> {
  const logger = createLogger("anyserve-up");
  let config = await loadConfig().catch(fail);
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
  const { token, tokenFile } = controlToken(o, file, logger);
  const readToken = o.readToken ?? process.env.ANYSERVE_READ_TOKEN;
  const inferenceToken = o.inferenceToken ?? process.env.ANYSERVE_INFERENCE_TOKEN;
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
    maxBufferedBytes: a.max_buffered_mb * 1024 * 1024,
    warmupMs: a.warmup * 1000,
    stallMs: a.stall_timeout * 1000,
    resilience: resilienceOf(a),
    registration: { maxReplicas: a.max_replicas, ratePerSecond: a.registration_rate },
    ...(token ? { token } : {}),
    ...(readToken ? { readToken } : {}),
    ...(inferenceToken ? { inferenceToken } : {}),
    ...tlsOf(a),
    logger,
    routes: (access) => ({
      ...deploymentRoutes(() => controller!, access),
      ...(config.repository !== null
        ? repositoryRoutes({
            root: config.repository,
            controller: () => controller!,
            current: () => config,
            replace: (next) => {
              config = next;
            },
            access,
          })
        : {}),
    }),
  }).catch(fail);
  const forgetRuntime = tokenFile ? noteRuntime(api.url, tokenFile) : () => undefined;
  const cpu = cpuCapper();
  if (Object.values(config.services).some((s) => s.resources.cpu_cores !== null)) {
    if (cpu.available) logger.info({ how: cpu.how }, "resources.cpu_cores caps each replica's CPU");
    else logger.warn({ reason: cpu.reason }, "resources.cpu_cores is a placement figure only here: replicas' CPU is not capped");
  }
  // What each app serves is known before any replica runs: a service scaled to zero is routable while cold.
  for (const [service, handlers] of Object.entries(served)) {
    api.coldStarts.learn(
      service,
      handlers.map((h) => h.capability),
    );
  }
  controller = new DeploymentController({
    apiServerUrl: api.url,
    registry: api.registry,
    policies: api.policies,
    coldStarts: api.coldStarts,
    node,
    logger,
    token,
    inferenceToken,
    cpu,
  });
  api.status.attach(controller);
  // The API server stops first: it stops taking requests and answers the ones in flight while
  // the replicas still run. Stopping the replicas first would leave it answering 404 "nothing
  // offers this" (not retryable) until it closed; a refused connection is something clients retry.
  onShutdown(async () => {
    forgetRuntime();
    await api.close();
    await controller!.stopAll();
  });
  const report = await controller.apply(config).catch(async (err: unknown) => {
    await api.close();
    return fail(err);
  });
  // Every replica of the deployment has started and registered (or is reported as failing):
  // a capability nothing matches is now a plain 404, not "still warming up".
  api.forwarder.endWarmup();
  printSummary(api.url, api.grpcAddress, controller, tokenFile);
  printTryLines(api.url, Object.values(served).flat(), inferenceToken !== undefined);
  announceReady({ role: "up", url: api.url, grpc: api.grpcAddress ?? null, token_file: tokenFile ?? null, services: report });
}

/**
 * The control-plane token `up` runs with: `--token`, `$ANYSERVE_TOKEN`, else the deployment's token
 * file (made on first use; its path is returned for the summary and `anyserve status`), or none
 * with `--no-token`.
 */
function controlToken(o: UpOptions, file: string, logger: Logger): { token?: string; tokenFile?: string } {
  if (o.token === false) {
    logger.warn("--no-token: anyone who reaches the API server may register replicas and manage the deployment");
    return {};
  }
  const given = o.token ?? process.env.ANYSERVE_TOKEN;
  if (given) return { token: given };
  const tokenFile = path.resolve(o.tokenFile ?? tokenFileOf(file));
  try {
    const { token, warning } = readOrCreateToken(tokenFile);
    if (warning) logger.warn(warning);
    return { token, tokenFile };
  } catch (err) {
    process.stderr.write(`anyserve up: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

/** The API server's TLS identity and the CA it trusts for replicas, from the file's `api_server` block. */
function tlsOf(a: ApiServerConfig): { tls?: ServerTls; tlsCa?: Buffer } {
  try {
    return {
      ...(a.tls_cert !== null && a.tls_key !== null ? { tls: readServerTls({ cert: a.tls_cert, key: a.tls_key }) } : {}),
      ...(a.tls_ca !== null ? { tlsCa: readCa(a.tls_ca) } : {}),
    };
  } catch (err) {
    process.stderr.write(`api_server: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

function printSummary(url: string, grpc: string | undefined, controller: DeploymentController, tokenFile: string | undefined): void {
  const lines = [``, `anyserve is up: API server ${url}${grpc ? ` (gRPC ${grpc})` : ""}`];
  for (const [name, s] of Object.entries(controller.status().services)) {
    if (s.placement === "unschedulable") {
      lines.push(`  ${name}: unschedulable — ${s.reason}`);
      continue;
    }
    const d = s.config.deployment;
    const a = s.autoscaling;
    const scaling = a ? ` (autoscaled ${a.min_replicas}–${a.max_replicas} at ${a.target_ongoing_requests} ongoing per replica)` : "";
    lines.push(
      `  ${name}: ${s.replicas.length} replica(s)${scaling}, ${d.threading_strategy} × ${d.thread_count}, queue ${s.config.performance.queue_size}`,
    );
    for (const r of s.replicas)
      lines.push(`    ${r.replicaId}: ${r.state}${r.http ? ` ${r.http}` : ""}${r.lastExit ? ` (last exit: ${r.lastExit})` : ""}`);
  }
  lines.push(
    `  dashboard: ${url}/dashboard   metrics: ${url}/metrics   status: anyserve status --api-server ${url}`,
    `  registry: ${url}/registry   services: ${url}/api/services   deployment: ${url}/api/deployment`,
  );
  if (tokenFile) {
    lines.push(
      `  control-plane token: ${tokenFile} (anyserve status and apply read it; the dashboard asks for it;`,
      `    curl -H "Authorization: Bearer $(cat ${tokenFile})" ${url}/registry)`,
    );
  }
  lines.push(`Ctrl-C stops everything.`, ``);
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * One first curl per deployed capability (six at most), so a new user can call each right away:
 * with the handler's declared example (a class method's: its parameter names as arguments), else
 * a `text` input, to `/infer/stream` for streaming handlers.
 */
function printTryLines(url: string, handlers: CheckedHandler[], inferenceToken: boolean): void {
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
    // The token itself is never printed: the line reads it from the environment.
    const auth = inferenceToken ? ` -H "Authorization: Bearer $ANYSERVE_INFERENCE_TOKEN"` : "";
    lines.push(
      `  curl -s${h.stream ? "N" : ""} ${url}${route} ${headers}${auth} -H 'Content-Type: application/json' \\`,
      `    -d '${json}'`,
    );
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
