/**
 * Placement on this machine (pure, no side effects): which services can run here, how many
 * replicas, and which GPU ids each replica gets. A service whose `target`/`target_nodes`/
 * `node_selector` this node cannot satisfy is `unschedulable` with the reason; a deployment whose
 * resources do not fit the node is refused as a whole, with the numbers.
 */
import os from "node:os";
import { detectGpus } from "./gpus.js";
import { type DeploymentFile, MIN_REPLICA_MEMORY_MB, type NodeConfig, type ServiceConfig } from "../config/schema.js";

export interface NodeCapacity {
  name: string;
  labels: Record<string, string>;
  cpuCores: number;
  memoryMb: number;
  /** GPU ids this node can hand out (`CUDA_VISIBLE_DEVICES` values). */
  gpuIds: number[];
}

export interface ReplicaPlan {
  service: string;
  index: number;
  replicaId: string;
  gpuIds: number[];
}

export type ServicePlacement =
  | { service: string; status: "scheduled"; replicas: ReplicaPlan[] }
  | { service: string; status: "unschedulable"; reason: string; replicas: [] };

export class PlacementError extends Error {
  constructor(readonly problems: string[]) {
    super(`the deployment does not fit this node:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "PlacementError";
  }
}

/** This machine as a node: the config's values, else what the OS and `nvidia-smi` report. */
export function localNode(cfg: NodeConfig): NodeCapacity {
  return {
    name: cfg.name,
    labels: cfg.labels,
    cpuCores: cfg.cpu_cores ?? os.availableParallelism(),
    memoryMb: cfg.memory_mb ?? Math.floor(os.totalmem() / 1024 / 1024),
    gpuIds: Array.from({ length: cfg.gpu_count ?? detectGpus() }, (_, i) => i),
  };
}

/** Why this node cannot run the service, or undefined when it can. */
export function placementConflict(s: ServiceConfig, node: NodeCapacity): string | undefined {
  const d = s.deployment;
  if (d.target === "remote_specific" && !(d.target_nodes ?? []).includes(node.name)) {
    return `target_nodes [${(d.target_nodes ?? []).join(", ")}] does not include this node '${node.name}' (placement on other machines is not available yet)`;
  }
  if (d.target === "local" && d.target_nodes !== null && !d.target_nodes.includes(node.name)) {
    return `target_nodes [${d.target_nodes.join(", ")}] does not include this node '${node.name}'`;
  }
  for (const [key, want] of Object.entries(d.node_selector ?? {})) {
    const have = node.labels[key];
    if (have !== want) {
      return `node_selector ${key}=${want} does not match node '${node.name}' (${have === undefined ? `no label ${key}` : `${key}=${have}`})`;
    }
  }
  return undefined;
}

/**
 * Places every service's replicas on `node`, in file order. Throws PlacementError when the
 * schedulable services together need more CPU, memory or GPUs than the node has. `counts` is the
 * desired number of replicas per service when it is not the config's `deployment.replicas`
 * (`anyserve scale`; an autoscaler).
 */
export function place(file: Pick<DeploymentFile, "services">, node: NodeCapacity, counts: Record<string, number> = {}): ServicePlacement[] {
  const out: ServicePlacement[] = [];
  let cpu = 0;
  let memory = 0;
  const freeGpus = [...node.gpuIds];
  const problems: string[] = [];
  for (const [service, cfg] of Object.entries(file.services)) {
    const conflict = placementConflict(cfg, node);
    if (conflict) {
      out.push({ service, status: "unschedulable", reason: conflict, replicas: [] });
      continue;
    }
    const n = counts[service] ?? cfg.deployment.replicas;
    const r = cfg.resources;
    cpu += n * (r.cpu_cores ?? 0);
    // A replica takes memory whether or not it says how much: count the least it runs in.
    memory += n * (r.memory_mb ?? MIN_REPLICA_MEMORY_MB);
    const replicas: ReplicaPlan[] = [];
    for (let index = 0; index < n; index++) {
      const want = r.gpu_count ?? 0;
      const gpuIds = freeGpus.splice(0, want);
      if (gpuIds.length < want) {
        problems.push(
          `${service}: replica ${index} needs ${want} GPU(s); node '${node.name}' has ${node.gpuIds.length} in all and none left`,
        );
      }
      replicas.push({ service, index, replicaId: `${service}-${index}`, gpuIds });
    }
    out.push({ service, status: "scheduled", replicas });
  }
  if (cpu > node.cpuCores)
    problems.push(`cpu_cores: the services need ${cpu} in all (replicas × cpu_cores); node '${node.name}' has ${node.cpuCores}`);
  if (memory > node.memoryMb)
    problems.push(
      `memory_mb: the services need ${memory} MB in all (replicas × memory_mb, ${MIN_REPLICA_MEMORY_MB} MB for a replica that sets none); node '${node.name}' has ${node.memoryMb} MB`,
    );
  if (problems.length > 0) throw new PlacementError(problems);
  return out;
}
