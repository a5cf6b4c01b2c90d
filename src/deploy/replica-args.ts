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

/**
 * The replica's environment: ours minus secrets, plus its GPUs. A replica with no `gpu_count` sees
 * no GPU (an empty `CUDA_VISIBLE_DEVICES`, as Ray does), so it cannot take another's by accident.
 */
export function replicaEnv(cfg: ResolvedServiceConfig, gpuIds: number[], token: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.ANYSERVE_TOKEN;
  if (token) env.ANYSERVE_TOKEN = token; // the replica needs it to register; its workers get a minimal env of their own
  env.CUDA_VISIBLE_DEVICES = (cfg.resources.gpu_count ?? 0) > 0 ? gpuIds.join(",") : "";
  return env;
}

/**
 * Node flags of the replica process. Under `single` and `async` the handlers run in the replica
 * process itself, so `memory_mb` is its heap limit (under the other strategies it is each
 * worker's, set by the replica).
 */
export function replicaExecArgv(cfg: ResolvedServiceConfig): string[] {
  // A Python app's handlers always run in Python worker processes, which take memory_mb themselves.
  const python = /\.py(?::[^:]*)?$/.test(cfg.app);
  const inline = !python && (cfg.deployment.threading_strategy === "single" || cfg.deployment.threading_strategy === "async");
  const mb = cfg.resources.memory_mb;
  return inline && mb !== null ? [`--max-old-space-size=${mb}`] : [];
}
