/**
 * Loading deployment files: YAML (or JSON) text → a validated deployment (the schema is
 * `src/config/schema.ts`); every failing field is reported at once (`ConfigError`).
 *
 * @example
 * ```ts
 * import { loadDeploymentFile } from "anyserve/server";
 * const config = await loadDeploymentFile("anyserve.yaml"); // throws ConfigError listing every problem
 * ```
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError, issuesOf } from "../config/errors.js";
import { deploymentFileSchema, type DeploymentFile } from "../config/schema.js";
import { ONNX_PREFIX } from "../models/load.js";
import { modelServices, scanRepository } from "../models/repository.js";

export { ConfigError, closest, type ConfigIssue } from "../config/errors.js";

/** A deployment's object store when it names none, relative to its file. */
export const DEPLOYMENT_OBJECT_STORE = ".anyserve/objects";

/**
 * Reads and validates a YAML (or JSON) deployment file. Paths in it are relative to the file and
 * become absolute: `app:`, the TLS files, and `object_store.dir`, which defaults to the
 * deployment's own `.anyserve/objects` beside the file (unrelated deployments do not share a
 * store). A service's `tls.ca` defaults to `api_server.tls_ca`.
 */
export async function loadDeploymentFile(file: string): Promise<DeploymentFile> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [{ path: "", message: `cannot read the file: ${(err as Error).message}` }]);
  }
  return loadDeploymentDoc(text, file);
}

/**
 * {@link loadDeploymentFile} of a document already read (YAML/JSON text or a parsed value), as if
 * it were `file`: `anyserve serve DIR` deploys `{repository: "."}` as `DIR/anyserve.yaml`.
 */
export function loadDeploymentDoc(doc: string | unknown, file: string): DeploymentFile {
  const dir = path.dirname(path.resolve(file));
  const config = parseDeployment(doc, file, dir);
  const relative = (p: string | null): string | null => (p === null ? null : path.resolve(dir, p));
  const a = config.api_server;
  a.tls_cert = relative(a.tls_cert);
  a.tls_key = relative(a.tls_key);
  a.tls_ca = relative(a.tls_ca);
  for (const service of Object.values(config.services)) {
    service.app = resolveApp(service.app, dir);
    // A relative interpreter path (.venv/bin/python) is relative to the file; a bare name is looked up in PATH.
    const python = service.deployment.python;
    if (python?.includes("/")) service.deployment.python = path.resolve(dir, python);
    service.object_store.dir = path.resolve(dir, service.object_store.dir ?? DEPLOYMENT_OBJECT_STORE);
    service.tls.cert = relative(service.tls.cert);
    service.tls.key = relative(service.tls.key);
    // A replica trusts the CA the API server uses for replicas: one CA for the deployment.
    service.tls.ca = relative(service.tls.ca) ?? a.tls_ca;
  }
  return config;
}

/**
 * Validates a deployment document given as YAML/JSON text or as an already parsed value. With
 * `dir` (the file's folder), a `repository:` is read and its models' services merged in (a service
 * the file names itself wins), and its path made absolute.
 */
export function parseDeployment(doc: string | unknown, source = "config", dir?: string): DeploymentFile {
  let value: unknown = doc;
  if (typeof doc === "string") {
    try {
      value = parseYaml(doc, { maxAliasCount: 100, uniqueKeys: true });
    } catch (err) {
      throw new ConfigError(source, [{ path: "", message: `not valid YAML: ${(err as Error).message.split("\n")[0]}` }]);
    }
  }
  const merged = withObjectStoreDefaults(dir === undefined ? value : withRepository(value, dir, source));
  const result = deploymentFileSchema.safeParse(merged, { reportInput: true });
  if (result.success) return result.data;
  throw new ConfigError(source, issuesOf(result.error, merged));
}

/**
 * The file's top-level `object_store` is the default of every service's own section: merged in
 * before validation, so a service's own keys win and every value is checked in the service.
 */
function withObjectStoreDefaults(value: unknown): unknown {
  if (!isRecord(value) || !isRecord(value.object_store) || !isRecord(value.services)) return value;
  const defaults = value.object_store;
  const services = Object.fromEntries(
    Object.entries(value.services).map(([name, s]) => {
      if (!isRecord(s)) return [name, s];
      const own = isRecord(s.object_store) ? s.object_store : s.object_store === undefined ? {} : undefined;
      return [name, own === undefined ? s : { ...s, object_store: { ...defaults, ...own } }];
    }),
  );
  return { ...value, services };
}

/** The repository's services merged into `services` (see {@link parseDeployment}). */
function withRepository(value: unknown, dir: string, source: string): unknown {
  if (!isRecord(value) || typeof value.repository !== "string") return value;
  const root = path.resolve(dir, value.repository);
  let services: Record<string, unknown>;
  try {
    services = Object.assign({}, ...scanRepository(root).map((m) => modelServices(root, m)));
  } catch (err) {
    throw new ConfigError(source, [{ path: "repository", message: (err as Error).message }]);
  }
  return { ...value, repository: root, services: { ...services, ...(isRecord(value.services) ? value.services : {}) } };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** `app: ./kv.ts:KVService` (or `kv_service.py:KVService`) relative to the deployment file. */
function resolveApp(spec: string, dir: string): string {
  if (spec.startsWith(ONNX_PREFIX)) return ONNX_PREFIX + path.resolve(dir, spec.slice(ONNX_PREFIX.length));
  const colon = spec.lastIndexOf(":");
  const file = colon > 1 ? spec.slice(0, colon) : spec;
  const rest = colon > 1 ? spec.slice(colon) : "";
  return /^[\w.]+$/.test(file) && !file.includes("/") && !/\.(?:[cm]?[jt]s|py)$/.test(file) ? spec : path.resolve(dir, file) + rest;
}
