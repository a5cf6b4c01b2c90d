/**
 * How a service's resolved config becomes a replica process: `anyserve start --replica-config
 * <json>` with the whole replica document (validated again by the same schema on arrival), and a
 * minimal, explicit environment (GPU ids through CUDA_VISIBLE_DEVICES; the token, never in the
 * document).
 */
import type { ReplicaDocInput } from "../config/replica.js";
import type { ResolvedServiceConfig } from "../config/resolve.js";

export interface ReplicaArgsInput {
  service: string;
  cfg: ResolvedServiceConfig;
  replicaId: string;
  apiServer: string;
  nodeName: string;
}

/** The replica's start document. */
export function replicaDoc({ service, cfg, replicaId, apiServer, nodeName }: ReplicaArgsInput): ReplicaDocInput {
  return { replica_id: replicaId, service, node: nodeName, api_server: apiServer, port: 0, http_port: 0, config: cfg };
}

export function replicaArgs(input: ReplicaArgsInput): string[] {
  return ["start", "--replica-config", JSON.stringify(replicaDoc(input))];
}

/** Environment variables that carry secrets: never passed on as they are. */
const SECRET_ENV = ["ANYSERVE_TOKEN", "ANYSERVE_READ_TOKEN", "ANYSERVE_INFERENCE_TOKEN"];

/**
 * The replica's environment: ours minus secrets, plus the deployment's tokens (in the environment,
 * never on the command line, where `ps` shows them), its GPUs and the deployment's CA. A replica
 * with no `gpu_count` sees no GPU (an empty `CUDA_VISIBLE_DEVICES`, as Ray does), so it cannot take
 * another's by accident.
 */
export function replicaEnv(
  cfg: ResolvedServiceConfig,
  gpuIds: number[],
  secrets: { token?: string | undefined; inferenceToken?: string | undefined } = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SECRET_ENV) delete env[name];
  // The replica needs them to register and to check callers; its workers get a minimal env of their own.
  if (secrets.token) env.ANYSERVE_TOKEN = secrets.token;
  if (secrets.inferenceToken) env.ANYSERVE_INFERENCE_TOKEN = secrets.inferenceToken;
  // Connections the replica makes without an explicit CA (objects between replicas) trust it too.
  if (cfg.tls.ca !== null) env.NODE_EXTRA_CA_CERTS = cfg.tls.ca;
  env.CUDA_VISIBLE_DEVICES = (cfg.resources.gpu_count ?? 0) > 0 ? gpuIds.join(",") : "";
  return env;
}

/**
 * Node flags of the replica process. Under `single` and `async` the handlers run in the replica
 * process itself, so `memory_mb` is its heap limit (under the other strategies it is each
 * worker's, set by the replica).
 */
export function replicaExecArgv(cfg: ResolvedServiceConfig): string[] {
  const inline = cfg.deployment.threading_strategy === "single" || cfg.deployment.threading_strategy === "async";
  const mb = cfg.resources.memory_mb;
  return inline && mb !== null ? [`--max-old-space-size=${mb}`] : [];
}
