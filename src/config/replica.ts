/**
 * What a replica is started with: who it is (id, service, node, where it registers, where it
 * listens) and its service's config. `anyserve up` builds this document for each replica from the
 * resolved service config and hands it over whole (`anyserve start --replica-config '<json>'`);
 * `anyserve start`'s flags build the same document field by field. Either way the replica validates
 * it with this schema on arrival and resolves it (`resolve.ts`), so a value the schema accepts runs.
 */
import { z } from "zod";
import { ConfigError, issuesOf } from "./errors.js";
import { resolveService, type ResolveContext, type ResolvedServiceConfig } from "./resolve.js";
import { type FieldMeta, serviceSchema } from "./schema.js";

const meta = (m: Omit<FieldMeta, "update">) => ({ update: "restart", ...m }) as unknown as Record<string, unknown>;
const port = z.number().int().min(0).max(65_535);
const apiServerUrl = z.url({ protocol: /^https?$/ }).max(2048);

/** The API servers of a replica document's `api_server` (one URL or a list), as a list. */
export function apiServersOf(doc: { api_server: string | readonly string[] | null }): string[] {
  return doc.api_server === null ? [] : [doc.api_server].flat();
}

/** The replica's own fields; each is also an `anyserve start` flag of the same name. */
export const replicaIdentityShape = {
  replica_id: z
    .string()
    .regex(/^[\w.-]{1,128}$/, "expected 1-128 characters of [A-Za-z0-9_.-]")
    .nullable()
    .default(null)
    .meta(meta({ help: "replica id in the registry (default: generated)" })),
  service: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 characters of [A-Za-z0-9_.-]")
    .nullable()
    .default(null)
    .meta(meta({ help: "service name in the registry; a class export is served under it" })),
  node: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 characters of [A-Za-z0-9_.-]")
    .nullable()
    .default(null)
    .meta(meta({ help: "node name in the registry" })),
  api_server: z
    .union([apiServerUrl, z.array(apiServerUrl).min(1).max(16)])
    .nullable()
    .default(null)
    .meta(
      meta({
        help: "API server(s) to register with, e.g. http://localhost:8080; several (a,b) for API servers without a single point of failure: the replica registers and heartbeats with each (default: none, direct callers only)",
      }),
    ),
  host: z
    .string()
    .min(1)
    .max(255)
    .default("127.0.0.1")
    .meta(meta({ help: "address to bind (0.0.0.0 or ::: every interface); registered unless advertise_host is set" })),
  advertise_host: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,255}$/, "expected a host name or an IP address")
    .nullable()
    .default(null)
    .meta(
      meta({
        help: "address the API server and other replicas reach this replica at (default: host; when host binds every interface, the address of the interface that routes to the API server)",
      }),
    ),
  port: port.default(50051).meta(meta({ help: "gRPC port (0: any free port)" })),
  http_port: port.default(0).meta(meta({ help: "REST and frame port, also used by the API server (0: any free port)" })),
};

export const replicaDocSchema = z.strictObject({ ...replicaIdentityShape, config: serviceSchema });

export type ReplicaDocInput = z.input<typeof replicaDocSchema>;
export type ReplicaIdentity = { readonly [K in keyof typeof replicaIdentityShape]: z.output<(typeof replicaIdentityShape)[K]> };

/** A replica's validated, resolved start document (deep-frozen config). */
export interface ReplicaDoc extends ReplicaIdentity {
  readonly config: ResolvedServiceConfig;
}

/** Validates a replica document (an object, or its JSON text) and resolves its service config. */
export function parseReplicaDoc(doc: unknown, ctx: ResolveContext = {}): ReplicaDoc {
  const source = ctx.source ?? "replica config";
  let value = doc;
  if (typeof doc === "string") {
    try {
      value = JSON.parse(doc);
    } catch (err) {
      throw new ConfigError(source, [{ path: "", message: `not valid JSON: ${(err as Error).message}` }]);
    }
  }
  const parsed = replicaDocSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) throw new ConfigError(source, issuesOf(parsed.error, value));
  const { config, ...identity } = parsed.data;
  return Object.freeze({ ...identity, config: resolveService(config, { ...ctx, source }) });
}
