/**
 * A model repository in Triton's layout, as services of a deployment:
 *
 * ```
 * model_repository/
 *   classifier/
 *     config.yaml          # optional: max_batch_size, instance_count, version_policy, inputs, outputs
 *     1/model.onnx
 *     2/model.onnx
 *   greeter/
 *     model.ts             # an app (exporting `app`), served alongside
 *   summarizer/
 *     model.py             # a Python app (`app = AnyServe()`), served on Python workers
 * ```
 *
 * Each served version of an ONNX model becomes one service `<name>-v<version>` whose app is
 * `onnx:<file>` (capability `{model: name, version}`); a folder with `model.ts` (or `.js`) or
 * `model.py` becomes service `<name>` serving that app (a Python one on Python worker processes,
 * `instance_count` of them, under the deployment's interpreter: execution/python.ts). `config.yaml` sets the service's `batch_size` (`max_batch_size`), its
 * sessions (`instance_count` worker threads, strategy `multi`; default 1) and which versions are served
 * (`version_policy`: `{latest: N}` — default `{latest: 1}` —, `{all: true}`, `{specific: ["1", "3"]}`);
 * its `inputs`/`outputs` replace the graph's in metadata and checks (read by onnx-app.ts); `python`
 * is a `model.py`'s own interpreter (like Triton's `EXECUTION_ENV_PATH`), read again on every load.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { AnyServeError } from "../errors.js";
import type { TensorSpec } from "../sdk/app.js";
import { checkTensorSpecs } from "../sdk/metadata.js";

/** A model's `config.yaml`. */
export interface ModelConfig {
  max_batch_size?: number;
  instance_count?: number;
  version_policy?: { latest?: number; all?: boolean; specific?: string[] };
  inputs?: TensorSpec[];
  outputs?: TensorSpec[];
  /** The interpreter of the folder's `model.py` (a path relative to the folder, or a command): its own environment. */
  python?: string;
}

/** One model folder of a repository. */
export interface RepositoryModel {
  name: string;
  /** Versions on disk (numeric folders holding model.onnx), ascending. */
  versions: string[];
  /** The versions the policy serves. */
  served: string[];
  /** `model.ts`/`model.js`/`model.py` beside the versions: an app served as service `<name>`. */
  app?: string;
  config: ModelConfig;
}

const CONFIG_KEYS = ["max_batch_size", "instance_count", "version_policy", "inputs", "outputs", "python"];

const APP_FILES = ["model.ts", "model.mts", "model.js", "model.mjs", "model.py"];

/** Reads `<dir>/config.yaml` (or `.yml`); `{}` when there is none. Throws CONFIG_INVALID naming the file. */
export function readModelConfig(dir: string): ModelConfig {
  const file = ["config.yaml", "config.yml"].map((f) => path.join(dir, f)).find((f) => existsSync(f));
  if (!file) return {};
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8")) ?? {};
  } catch (err) {
    throw new AnyServeError("CONFIG_INVALID", `${file}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const bad = (what: string) => new AnyServeError("CONFIG_INVALID", `${file}: ${what}`);
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw bad("expected a mapping");
  const c = doc as Record<string, unknown>;
  for (const key of Object.keys(c)) {
    if (!CONFIG_KEYS.includes(key)) throw bad(`unknown key '${key}' (expected ${CONFIG_KEYS.join(", ")})`);
  }
  if (c.python !== undefined && !(typeof c.python === "string" && c.python.trim() !== "" && c.python.length <= 4096))
    throw bad(`python must be a path to an interpreter (relative to the model's folder) or a command, got ${JSON.stringify(c.python)}`);
  for (const key of ["max_batch_size", "instance_count"] as const) {
    const v = c[key];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 4096))
      throw bad(`${key} must be an integer 1-4096, got ${JSON.stringify(v)}`);
  }
  const p = c.version_policy as ModelConfig["version_policy"] | undefined;
  if (p !== undefined) {
    const ok =
      typeof p === "object" &&
      p !== null &&
      Object.keys(p).length === 1 &&
      ((Number.isInteger(p.latest) && p.latest! >= 1) ||
        p.all === true ||
        (Array.isArray(p.specific) && p.specific.length > 0 && p.specific.every((v) => /^\d+$/.test(String(v)))));
    if (!ok) throw bad(`version_policy must be {latest: N}, {all: true} or {specific: [versions]}, got ${JSON.stringify(p)}`);
  }
  try {
    checkTensorSpecs(c.inputs, "inputs");
    checkTensorSpecs(c.outputs, "outputs");
  } catch (err) {
    throw bad((err as Error).message);
  }
  return c as ModelConfig;
}

/** The versions a policy serves out of those on disk (ascending numeric order). */
export function servedVersions(versions: string[], policy: ModelConfig["version_policy"]): string[] {
  if (policy?.all) return versions;
  if (policy?.specific) return versions.filter((v) => policy.specific!.map(String).includes(v));
  return versions.slice(-(policy?.latest ?? 1));
}

/** One model folder. Throws CONFIG_INVALID when it holds neither a version nor an app. */
export function readRepositoryModel(root: string, name: string): RepositoryModel {
  const dir = path.join(root, name);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new AnyServeError("MODEL_NOT_FOUND", `model '${name}' is not in the repository ${root}`);
  const config = readModelConfig(dir);
  const versions = readdirSync(dir)
    .filter((v) => /^\d+$/.test(v) && existsSync(path.join(dir, v, "model.onnx")))
    .sort((a, b) => Number(a) - Number(b));
  const apps = APP_FILES.map((f) => path.join(dir, f)).filter((f) => existsSync(f));
  // A compiled model.js beside its model.ts is one app; a Python and a JavaScript app would be two
  // services of one name, so which one serves would be a guess.
  const python = apps.find((f) => f.endsWith(".py"));
  if (python && apps.length > 1)
    throw new AnyServeError(
      "CONFIG_INVALID",
      `${dir}: both ${apps.map((f) => path.basename(f)).join(" and ")}: a model folder serves one app, keep model.py or the other`,
    );
  const app = apps[0];
  if (versions.length === 0 && !app)
    throw new AnyServeError("CONFIG_INVALID", `${dir}: no <version>/model.onnx and no model.ts or model.py: nothing to serve`);
  return { name, versions, served: servedVersions(versions, config.version_policy), config, ...(app ? { app } : {}) };
}

/** Every model folder of the repository (folders starting with `.` are skipped). */
export function scanRepository(root: string): RepositoryModel[] {
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new AnyServeError("CONFIG_INVALID", `the model repository ${root} is not a directory`);
  return readdirSync(root)
    .filter((n) => !n.startsWith(".") && statSync(path.join(root, n)).isDirectory())
    .sort()
    .map((n) => readRepositoryModel(root, n));
}

/** The service name of one served version. */
export function versionService(model: string, version: string): string {
  return `${model}-v${version}`;
}

/**
 * A model's services, as deployment-file service documents (validated by the deployment schema
 * like any other): one per served version, plus its app.
 */
export function modelServices(root: string, m: RepositoryModel): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const c = m.config;
  // Worker threads, also for one instance: onnxruntime-node's session.run is synchronous, and on the
  // replica's event loop it would stop the replica's I/O for the length of each run.
  const deployment = { threading_strategy: "multi", thread_count: c.instance_count ?? 1 };
  const performance = c.max_batch_size && c.max_batch_size > 1 ? { batch_size: c.max_batch_size } : {};
  for (const v of m.served) {
    out[versionService(m.name, v)] = { app: `onnx:${path.resolve(root, m.name, v, "model.onnx")}`, deployment, performance };
  }
  if (m.app) {
    // A model.py's own interpreter (its virtualenv, say): a path beside the model, or a command on PATH.
    const python = c.python === undefined ? {} : { python: c.python.includes("/") ? path.resolve(root, m.name, c.python) : c.python };
    out[m.name] = { app: path.resolve(m.app), deployment: { ...deployment, ...python }, performance };
  }
  return out;
}

/** Which model a service of the repository serves (`classifier-v2` → classifier), if any. */
export function modelOfService(models: readonly string[], service: string): string | undefined {
  return models.find((m) => service === m || (service.startsWith(`${m}-v`) && /^\d+$/.test(service.slice(m.length + 2))));
}
