/**
 * The deployment config: the seed's `ServiceDeploymentConfig`, in the seed's YAML layout
 * (`services.<name>.{deployment, resources, performance, monitoring}`) plus what anyserve needs
 * (`app`, `object_store`, `autoscaling`, batching wait, lazy workers, the `api_server` and `node` blocks).
 *
 * This zod schema is the one source of every field's type, range and default, and (in each
 * field's metadata, {@link FieldMeta}) of how a change applies to a running deployment and which
 * `anyserve start` flag sets it. Everything else is derived from it: the TypeScript types, the
 * validation errors of `up`/`apply`/`validate`, the replica's start flags (`src/cli/config-flags.ts`),
 * the document `up` hands to each replica (`replica.ts` here) and the execution settings
 * (`resolve.ts`). `docs/config.md` lists every field; `test/config/docs.test.ts` keeps it in step.
 *
 * The sections live in their own files beside this one — service-sections.ts (deployment,
 * resources, performance, tls), monitoring-objects.ts (monitoring, object_store), autoscaling.ts,
 * api-server.ts, with the shared field types in primitives.ts and the cross-field rules in
 * service-rules.ts; this file composes them and re-exports what importers use.
 */
import { z } from "zod";
import { apiServerSchema } from "./api-server.js";
import { autoscaling } from "./autoscaling.js";
import { monitoring, objectStore } from "./monitoring-objects.js";
import { type FieldMeta, meta, name, positiveInt } from "./primitives.js";
import { crossFieldRules } from "./service-rules.js";
import { deployment, performance, resources, tls } from "./service-sections.js";

export { apiServerSchema } from "./api-server.js";
export type { FieldMeta } from "./primitives.js";
export { BALANCING, MIN_REPLICA_MEMORY_MB, STRATEGIES, TARGETS } from "./service-sections.js";

/** The sections of a service, by name. */
export const SECTION_SCHEMAS = { deployment, resources, performance, monitoring, object_store: objectStore, tls, autoscaling } as const;
export type SectionName = keyof typeof SECTION_SCHEMAS;
export const SECTION_NAMES = Object.keys(SECTION_SCHEMAS) as SectionName[];

const sections = {
  deployment: deployment.default(deployment.parse({})),
  resources: resources.default(resources.parse({})),
  performance: performance.default(performance.parse({})),
  monitoring: monitoring.default(monitoring.parse({})),
  object_store: objectStore.default(objectStore.parse({})),
  tls: tls.default(tls.parse({})),
  // Absent: no autoscaling (`deployment.replicas` runs); `autoscaling: {}` turns it on with the defaults.
  autoscaling: autoscaling.nullable().default(null),
};

/** `app`: the module serving the service, `FILE[:export]` (an AnyServe app or a service class). */
const app = z
  .string()
  .min(1)
  .max(1024)
  .meta(meta({ update: "restart", help: "the app module, FILE[:export] (.ts loads directly), or onnx:FILE.onnx to serve an ONNX model" }));

// Cross-field rules run even when other fields failed, so every problem is reported at once.
const withRules = <T extends z.ZodType>(s: T) => s.check(z.superRefine(crossFieldRules, { when: () => true }));

export const serviceSchema = withRules(z.strictObject({ app, ...sections }));

export const nodeSchema = z.strictObject({
  name: name.default("local"),
  labels: z.record(name, z.string().max(256)).default({}),
  /** Capacity of this machine; defaults are read from the OS (cpus, memory) and nvidia-smi (GPUs). */
  cpu_cores: z.number().min(0.001).max(1_000_000).nullable().default(null),
  memory_mb: positiveInt(64 * 1024 * 1024)
    .nullable()
    .default(null),
  /** null: as many as `nvidia-smi -L` lists (none without it). */
  gpu_count: z.number().int().min(0).max(1024).nullable().default(null),
});

export const deploymentFileSchema = z.strictObject({
  api_server: apiServerSchema.default(apiServerSchema.parse({})),
  node: nodeSchema.default(nodeSchema.parse({})),
  /**
   * Defaults of every service's `object_store` section: `parseDeployment` merges them into each
   * service before validation (a service's own values win).
   */
  object_store: objectStore.partial().default({}),
  /**
   * A model repository (docs/models.md), relative to the file: every model in it becomes services
   * (merged in by `loadDeploymentFile`), and the API server answers the OIP repository extension.
   */
  repository: z.string().min(1).max(4096).nullable().default(null),
  services: z.record(name, serviceSchema).refine((s) => Object.keys(s).length > 0, "at least one service is needed"),
});

export type ServiceConfig = z.output<typeof serviceSchema>;
/** A service's config as users write it: `app` and any subset of each section. */
export type ServiceConfigInput = z.input<typeof serviceSchema>;
export type ApiServerConfig = z.output<typeof apiServerSchema>;
export type NodeConfig = z.output<typeof nodeSchema>;
export type ObjectStoreConfig = z.output<typeof objectStore>;
export type AutoscalingConfig = z.output<typeof autoscaling>;
export type DeploymentFile = z.output<typeof deploymentFileSchema>;

/** A field's metadata, or undefined for a path that is not a service field. */
export function fieldMeta(section: SectionName | "app", key?: string): FieldMeta | undefined {
  if (section === "app") return app.meta() as unknown as FieldMeta;
  const shape = SECTION_SCHEMAS[section].shape as Record<string, z.ZodType>;
  return key !== undefined && Object.hasOwn(shape, key) ? (shape[key]!.meta() as unknown as FieldMeta | undefined) : undefined;
}

/** How a changed field (`section.key`, or `app`) applies to a running deployment. */
export function updateTypeOf(field: string): "live" | "restart" {
  const [section, key] = field.split(".") as [SectionName | "app", string | undefined];
  return fieldMeta(section, key)?.update ?? "restart";
}
