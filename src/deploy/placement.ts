/**
 * Placement on this machine (pure, no side effects): which services can run here, how many
 * replicas, and which GPU ids each replica gets. A service whose `target`/`target_nodes`/
 * `node_selector` this node cannot satisfy is `unschedulable` with the reason; a deployment whose
 * resources do not fit the node is refused as a whole, with the numbers.
 */
import os from "node:os";
import { detectGpus } from "./gpus.js";
import {
  type AutoscalingConfig,
  type DeploymentFile,
  MIN_REPLICA_MEMORY_MB,
  type NodeConfig,
  type ServiceConfig,
} from "../config/schema.js";

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
 * The most replicas an autoscaled service may run here: `max_replicas`, or by default one per CPU
 * core of the node (at least `min_replicas`). The node's capacity may cap it further ({@link headroom}).
 */
export function maxReplicasOf(a: AutoscalingConfig, node: NodeCapacity): number {
  return a.max_replicas ?? Math.max(a.min_replicas, Math.floor(node.cpuCores) || 1);
}

/**
 * GPU ids per slot of every schedulable service. Services with a fixed count take theirs first,
 * in file order, one slot per replica; then each autoscaled service reserves GPUs for as many
 * slots as it may grow to (`max_replicas`), as far as the GPUs last. So an autoscaled service's
 * growth never moves another service's GPU ids, and its own slots keep theirs whatever its count.
 */
function gpuSlots(file: Pick<DeploymentFile, "services">, node: NodeCapacity, counts: Record<string, number>): Map<string, number[][]> {
  const free = [...node.gpuIds];
  const out = new Map<string, number[][]>();
  const take = (service: string, cfg: ServiceConfig, slots: number, partial: boolean): void => {
    const want = cfg.resources.gpu_count ?? 0;
    const ids: number[][] = [];
    for (let slot = 0; slot < slots; slot++) {
      if (want > 0 && free.length < want && partial) break;
      ids.push(free.splice(0, want));
    }
    out.set(service, ids);
  };
  const schedulable = Object.entries(file.services).filter(([, cfg]) => placementConflict(cfg, node) === undefined);
  for (const [service, cfg] of schedulable) {
    if (cfg.autoscaling === null) take(service, cfg, counts[service] ?? cfg.deployment.replicas, false);
  }
  for (const [service, cfg] of schedulable) {
    if (cfg.autoscaling === null) continue;
    const n = counts[service] ?? cfg.autoscaling.min_replicas;
    const reserve = (cfg.resources.gpu_count ?? 0) > 0 ? Math.max(n, maxReplicasOf(cfg.autoscaling, node)) : n;
    take(service, cfg, reserve, true);
  }
  return out;
}

/**
 * Places every service's replicas on `node`, in file order. Throws PlacementError when the
 * schedulable services together need more CPU, memory or GPUs than the node has. `counts` is the
 * desired number of replicas per service when it is not the config's `deployment.replicas`
 * (`anyserve scale`; the autoscaler's count, `min_replicas` when absent).
 */
export function place(file: Pick<DeploymentFile, "services">, node: NodeCapacity, counts: Record<string, number> = {}): ServicePlacement[] {
  const out: ServicePlacement[] = [];
  let cpu = 0;
  let memory = 0;
  const problems: string[] = [];
  const gpus = gpuSlots(file, node, counts);
  for (const [service, cfg] of Object.entries(file.services)) {
    const conflict = placementConflict(cfg, node);
    if (conflict) {
      out.push({ service, status: "unschedulable", reason: conflict, replicas: [] });
      continue;
    }
    const n = countOf(cfg, counts[service]);
    const r = cfg.resources;
    cpu += n * (r.cpu_cores ?? 0);
    // A replica takes memory whether or not it says how much: count the least it runs in.
    memory += n * (r.memory_mb ?? MIN_REPLICA_MEMORY_MB);
    const slots = gpus.get(service) ?? [];
    const want = r.gpu_count ?? 0;
    const replicas: ReplicaPlan[] = [];
    for (let index = 0; index < Math.max(n, slots.length); index++) {
      const gpuIds = slots[index] ?? [];
      if (index < n && gpuIds.length < want) {
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

/** A service's replica count: the one asked for, else `min_replicas` when autoscaled, else `deployment.replicas`. */
function countOf(cfg: ServiceConfig, asked: number | undefined): number {
  return asked ?? cfg.autoscaling?.min_replicas ?? cfg.deployment.replicas;
}

/** How many replicas of one service this node can hold, and what stops it there. */
export interface Headroom {
  max: number;
  /** What caps `max` (`node memory: …`); undefined when nothing does (a service without resources is capped by memory anyway). */
  limitedBy?: string;
}

/**
 * The most replicas of `service` that fit on `node` beside the other services at their `counts`:
 * CPU (`cpu_cores`), memory (`memory_mb`, 64 MB for a replica that sets none) and the GPUs its
 * slots have. The autoscaler never asks for more, and says which resource stopped it.
 */
export function headroom(file: DeploymentFile, node: NodeCapacity, counts: Record<string, number>, service: string): Headroom {
  const own = file.services[service];
  if (!own) return { max: 0, limitedBy: `no service '${service}'` };
  let cpu = 0;
  let memory = 0;
  for (const [name, cfg] of Object.entries(file.services)) {
    if (name === service || placementConflict(cfg, node) !== undefined) continue;
    const n = countOf(cfg, counts[name]);
    cpu += n * (cfg.resources.cpu_cores ?? 0);
    memory += n * (cfg.resources.memory_mb ?? MIN_REPLICA_MEMORY_MB);
  }
  const r = own.resources;
  const limits: Headroom[] = [];
  const others = (used: number, unit: string) => (used > 0 ? `, ${used}${unit} held by the other services` : "");
  if (r.cpu_cores !== null) {
    const n = Math.max(0, Math.floor((node.cpuCores - cpu) / r.cpu_cores + 1e-9));
    limits.push({
      max: n,
      limitedBy: `node CPU: ${n} replica(s) × ${r.cpu_cores} cores fit in the node's ${node.cpuCores}${others(cpu, "")}`,
    });
  }
  const perReplica = r.memory_mb ?? MIN_REPLICA_MEMORY_MB;
  const byMemory = Math.max(0, Math.floor((node.memoryMb - memory) / perReplica));
  limits.push({
    max: byMemory,
    limitedBy: `node memory: ${byMemory} replica(s) × ${perReplica} MB fit in the node's ${node.memoryMb} MB${others(memory, " MB")}`,
  });
  if ((r.gpu_count ?? 0) > 0) {
    const slots = (gpuSlots(file, node, { ...counts, [service]: counts[service] ?? 0 }).get(service) ?? []).filter(
      (ids) => ids.length === r.gpu_count,
    ).length;
    limits.push({
      max: slots,
      limitedBy: `node GPUs: ${slots} replica(s) × ${r.gpu_count} GPU(s) fit in the node's ${node.gpuIds.length}, beside the other services'`,
    });
  }
  return limits.reduce((a, b) => (b.max < a.max ? b : a));
}
