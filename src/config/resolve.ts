/**
 * A service's config, validated and fully resolved once: every default the schema leaves to the
 * machine (threads per strategy, the pool's bound, the object store's directory) is filled in, and
 * the result is deep-frozen. `anyserve up` resolves each service once and hands the value to its
 * replicas whole; a replica started by hand resolves its flags the same way.
 *
 * @example
 * ```ts
 * const cfg = resolveService({ app: "./app.ts:app", deployment: { threading_strategy: "multi" } }, { cpus: 4 });
 * cfg.deployment.thread_count; // 4
 * ```
 */
import os from "node:os";
import { ConfigError, issuesOf } from "./errors.js";
import { serviceSchema, type ServiceConfig, type ServiceConfigInput } from "./schema.js";

/** Where the machine decides a default. */
export interface ResolveContext {
  /**
   * This machine's CPUs (default: `os.availableParallelism()`). `multi`, `process` and `pool` are
   * sized by them, or by the service's `cpu_cores` when it asks for fewer.
   */
  cpus?: number;
  /** The object store directory when the config names none. */
  objectStoreDir?: string;
  /** Names the config in errors (a file, `--replica-config`, a service). */
  source?: string;
}

/** The object store a replica uses when neither its config nor its deployment names one (the seed's). */
export const DEFAULT_OBJECT_STORE_DIR = "/tmp/anyserve-objects";

/** A service config with every value decided; deep-frozen. */
export type ResolvedServiceConfig = ServiceConfig & {
  readonly deployment: ServiceConfig["deployment"] & { thread_count: number; max_thread_count: number };
  readonly performance: ServiceConfig["performance"] & { batch_size: number };
  readonly object_store: ServiceConfig["object_store"] & { dir: string };
};

/** `thread_count` when the config gives none: what each strategy is for. */
export function defaultThreadCount(strategy: ServiceConfig["deployment"]["threading_strategy"], cpus: number): number {
  switch (strategy) {
    case "single":
    case "pool":
      return 1;
    case "async":
      return 64;
    case "multi":
    case "process":
      return cpus;
  }
}

/** Validates `input` with the schema (throws ConfigError listing every problem) and resolves it. */
export function resolveService(input: ServiceConfigInput | ServiceConfig, ctx: ResolveContext = {}): ResolvedServiceConfig {
  const parsed = serviceSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) throw new ConfigError(ctx.source ?? "service config", issuesOf(parsed.error, input));
  const cfg = structuredClone(parsed.data);
  const machine = ctx.cpus ?? os.availableParallelism();
  const wanted = cfg.resources.cpu_cores;
  const cpus = wanted === null ? machine : Math.max(1, Math.min(machine, Math.ceil(wanted)));
  const d = cfg.deployment;
  d.thread_count ??= defaultThreadCount(d.threading_strategy, cpus);
  d.max_thread_count ??= d.thread_pool_size ?? Math.max(d.thread_count, cpus);
  cfg.performance.batch_size ??= 1;
  cfg.object_store.dir ??= ctx.objectStoreDir ?? DEFAULT_OBJECT_STORE_DIR;
  return deepFreeze(cfg) as ResolvedServiceConfig;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
