/**
 * Python apps (`./chat_app.py:app`, `./kv_service.py:KVService`): the replica is Node, so it cannot
 * load them; it learns what they serve by running `python -m anyserve.describe` once at start (the
 * Python SDK loads the app as a worker would and prints its handlers as JSON), and builds an
 * {@link AnyServe} app of the same capabilities in registration order. Every request then runs in
 * Python worker processes (src/execution/python.ts); the handlers of this app are never called.
 *
 * The interpreter: `--python PATH` / `python:` in the deployment file / `ANYSERVE_PYTHON`, default
 * `python3` (a virtualenv's python works). The SDK is this package's `python/` folder, put on the
 * interpreter's `PYTHONPATH`: nothing is installed with pip. docs/python.md.
 *
 * @example
 * ```ts
 * const app = await loadApp("./chat_app.py:app", { python: ".venv/bin/python" });
 * app.getCapabilities(); // [{ type: "chat", model: "demo" }, …]
 * ```
 */
import { execFile, type ExecFileException } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AnyServeError } from "../errors.js";
import type { CapabilityMap } from "../protocol/capability.js";
import { AnyServe, type HandlerOptions, type TensorSpec } from "./app.js";
import { markServiceApp, SERVICE_AFFINITIES, type ServiceAffinity } from "./service.js";

/** The Python SDK shipped in this package (`<package>/python`, holding `anyserve/`). */
export const PYTHON_SDK_DIR = fileURLToPath(new URL("../../python/", import.meta.url));

/** The default interpreter. */
export const DEFAULT_PYTHON = "python3";

/** How long loading a Python app to describe it may take. */
const DESCRIBE_TIMEOUT_MS = 60_000;

/** Environment names a Python process gets besides anyserve's own (never a token). */
const PYTHON_ENV = [
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "TZ",
  "TMPDIR",
  "VIRTUAL_ENV",
  "CUDA_VISIBLE_DEVICES",
  "ANYSERVE_LOG_LEVEL",
  "ANYSERVE_SERVICE",
];
const SECRETS = new Set(["ANYSERVE_TOKEN"]);

/** True for an app spec whose file is a Python module. */
export function isPythonSpec(spec: string): boolean {
  const colon = spec.lastIndexOf(":");
  const file = colon > 1 ? spec.slice(0, colon) : spec;
  return file.endsWith(".py");
}

/** The interpreter to use: the configured one, else `$ANYSERVE_PYTHON`, else `python3`. */
export function pythonInterpreter(configured?: string | null): string {
  return configured || process.env.ANYSERVE_PYTHON || DEFAULT_PYTHON;
}

/**
 * The environment of a Python process of the replica (describe, workers): the minimal set, the
 * names in `extra` (`worker_env`), `PYTHONPATH` with the SDK first, unbuffered output. Never the token.
 */
export function pythonEnv(extra: readonly string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of [...PYTHON_ENV, ...extra]) {
    const v = process.env[k];
    if (v !== undefined && !SECRETS.has(k)) env[k] = v;
  }
  const user = process.env.PYTHONPATH;
  env.PYTHONPATH = user ? `${PYTHON_SDK_DIR}${path.delimiter}${user}` : PYTHON_SDK_DIR;
  env.PYTHONUNBUFFERED = "1";
  return env;
}

/** One handler as `python -m anyserve.describe` reports it. */
interface DescribedHandler {
  capability: CapabilityMap;
  stream: boolean;
  batch: boolean;
  lazy: boolean;
  /** The handler whose start hooks serve this one: itself, or a class service's first method. */
  unit: number;
  example?: Record<string, unknown>;
  inputs?: TensorSpec[];
  outputs?: TensorSpec[];
  platform?: string;
}

/** A class service as `python -m anyserve.describe` reports it. */
interface DescribedService {
  name: string;
  class: string;
  /** The class's `affinity` attribute (default `key`). */
  affinity: string;
}

/** An app whose handlers are Python: routed here, run by Python workers. */
export class PythonApp extends AnyServe {
  /**
   * @param spec `FILE[:export]` as the workers load it.
   * @param python The interpreter.
   * @param units Per handler, the handler whose worker processes serve it (a class service's
   *   methods share one set, so one instance serves them all).
   */
  constructor(
    readonly spec: string,
    readonly python: string,
    readonly units: readonly number[],
    readonly pythonVersion: string,
  ) {
    super();
  }
}

export function isPythonApp(app: unknown): app is PythonApp {
  return app instanceof PythonApp;
}

/** What an app that cannot be described says (mirrors load-app.ts's AppLoadError kinds, plus the interpreter's). */
export class PythonAppError extends Error {
  constructor(
    readonly kind: "not_found" | "import_failed" | "no_export" | "no_interpreter",
    message: string,
  ) {
    super(message);
    this.name = "AppLoadError";
  }
}

function notRunHere(): never {
  throw new AnyServeError("INTERNAL", "a Python handler runs in a Python worker process, not in the replica");
}

/** Describes the Python app `spec` with `python` and builds its {@link PythonApp}. */
export async function loadPythonApp(spec: string, o: { python?: string | null; service?: string; cwd?: string } = {}): Promise<PythonApp> {
  const python = pythonInterpreter(o.python);
  const answer = await describe(spec, python, o);
  const app = new PythonApp(
    spec,
    python,
    answer.handlers.map((h) => h.unit),
    answer.python,
  );
  // A class service: its calls are pinned to a worker as a TypeScript one's are (by its first argument by default).
  const svc = answer.service;
  const pin = svc
    ? markServiceApp(app, {
        name: svc.name,
        className: svc.class,
        affinity: (SERVICE_AFFINITIES as readonly string[]).includes(svc.affinity) ? (svc.affinity as ServiceAffinity) : "key",
        args: [],
      })
    : undefined;
  for (const h of answer.handlers) {
    const options: HandlerOptions = { stream: h.stream, batch: h.batch, lazy: h.lazy };
    if (pin && !h.batch) options.affinity = pin;
    if (h.example) options.example = h.example;
    if (h.inputs) options.inputs = h.inputs;
    if (h.outputs) options.outputs = h.outputs;
    if (h.platform) options.platform = h.platform;
    app.capability(h.capability, notRunHere, options);
  }
  return app;
}

async function describe(
  spec: string,
  python: string,
  o: { service?: string; cwd?: string },
): Promise<{ python: string; handlers: DescribedHandler[]; service?: DescribedService }> {
  const args = ["-m", "anyserve.describe", spec, ...(o.service ? ["--service", o.service] : [])];
  const env = { ...pythonEnv(), ...(o.service ? { ANYSERVE_SERVICE: o.service } : {}) };
  const { stdout, stderr, error } = await new Promise<{ stdout: string; stderr: string; error?: ExecFileException }>((resolve) =>
    execFile(python, args, { env, cwd: o.cwd ?? process.cwd(), timeout: DESCRIBE_TIMEOUT_MS, maxBuffer: 8 << 20 }, (err, out, errOut) =>
      resolve({ stdout: String(out), stderr: String(errOut), ...(err ? { error: err } : {}) }),
    ),
  );
  if (error?.code === "ENOENT" || error?.code === "EACCES") {
    throw new PythonAppError(
      "no_interpreter",
      `Python interpreter '${python}' ${error.code === "ENOENT" ? "was not found" : "cannot be run"}: give one with --python PATH, python: in the deployment file or ANYSERVE_PYTHON (default ${DEFAULT_PYTHON})`,
    );
  }
  if (error?.killed) throw new PythonAppError("import_failed", `${spec} did not load within ${DESCRIBE_TIMEOUT_MS / 1000} s (${python})`);
  const line = stdout.trim().split("\n").at(-1) ?? "";
  let answer:
    | { ok?: boolean; kind?: string; message?: string; python?: string; handlers?: DescribedHandler[]; service?: DescribedService }
    | undefined;
  try {
    answer = JSON.parse(line) as typeof answer;
  } catch {
    answer = undefined;
  }
  if (!answer || typeof answer.ok !== "boolean") {
    const why = stderr.trim().split("\n").at(-1) || error?.message || "no answer";
    throw new PythonAppError("import_failed", `${spec} cannot be loaded with ${python}: ${why}`);
  }
  if (!answer.ok) {
    const kind = answer.kind === "not_found" || answer.kind === "no_export" ? answer.kind : "import_failed";
    throw new PythonAppError(kind, answer.message ?? `${spec} cannot be loaded`);
  }
  return { python: answer.python ?? "", handlers: answer.handlers ?? [], ...(answer.service ? { service: answer.service } : {}) };
}
