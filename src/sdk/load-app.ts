/**
 * Loads a user app from `FILE[:export]` — TypeScript directly (through tsx), no build step for
 * the user. The seed's dotted form (`examples.chat_app:app`) is accepted too. A class export is
 * served as a class service (see service.ts).
 *
 * An app loads from any folder: `anyserve` resolves to the running anyserve wherever the app is,
 * and `.ts`/`.js` files load as the module system their syntax is written in, whatever the
 * package type (`app-hooks.ts` says why).
 */
import { existsSync, readFileSync } from "node:fs";
import Module, { createRequire, register } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { closest } from "../util/closest.js";
import { isApp, type AnyServe } from "./app.js";
import { isServiceClass, serviceApp } from "./service.js";

let tsxRegistered = false;
let tsxCjsRegistered = false;

/**
 * A `.cts` app is CommonJS: loaded with `require` under tsx's CommonJS hooks. Imported instead, its
 * `require("anyserve")` would run inside Node's ESM loader, which cannot require ES modules there.
 */
async function requireCts(file: string): Promise<unknown> {
  if (!tsxCjsRegistered) {
    const tsx = await import("tsx/cjs/api");
    tsx.register();
    tsxCjsRegistered = true;
  }
  return createRequire(import.meta.url)(file);
}
let hooksRegistered = false;

/** The running anyserve's package.json (this file is `<root>/dist/sdk/` or `<root>/src/sdk/`). */
const SELF = new URL("../../package.json", import.meta.url);

/**
 * Registers the app hooks once per thread: `anyserve` for `import` (ESM hooks) and for `require`
 * (Node 20 offers no hook for CommonJS resolution, so `Module._resolveFilename` is wrapped, as
 * module-alias and tsconfig-paths do; only `anyserve` and `anyserve/*` are touched).
 */
function registerAppHooks(): void {
  if (hooksRegistered) return;
  hooksRegistered = true;
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  register(new URL(`./app-hooks${ext}`, import.meta.url), { data: { self: SELF.href } });
  // `anyserve` resolved as from our own package.json: the package's self-reference.
  const selfPath = fileURLToPath(SELF);
  const internals = Module as unknown as {
    _resolveFilename: (request: string, parent: unknown, ...rest: unknown[]) => string;
    _nodeModulePaths: (dir: string) => string[];
  };
  const self = Object.assign(new Module(selfPath), { filename: selfPath, paths: internals._nodeModulePaths(path.dirname(selfPath)) });
  const resolveFilename = internals._resolveFilename;
  internals._resolveFilename = function (request: string, parent: unknown, ...rest: unknown[]): string {
    const ours = request === "anyserve" || request.startsWith("anyserve/");
    return resolveFilename.call(this, request, ours ? self : parent, ...rest);
  };
}

export interface LoadAppOptions {
  cwd?: string;
  /**
   * The service name for a class export (its methods become `{service, method}`); defaults to
   * `$ANYSERVE_SERVICE` (set by `anyserve start --service`, so worker threads agree), then the
   * export's name.
   */
  service?: string;
  /** The constructor's arguments for a class export (a worker gets the ones its replica's service was made with). */
  args?: unknown[];
}

export async function loadApp(spec: string, opts: LoadAppOptions | string = {}): Promise<AnyServe> {
  const { cwd = process.cwd(), service, args = [] } = typeof opts === "string" ? { cwd: opts } : opts;
  const colon = spec.lastIndexOf(":");
  const hasExport = colon > 1; // not a Windows drive letter
  const fileSpec = hasExport ? spec.slice(0, colon) : spec;
  const exportName = hasExport ? spec.slice(colon + 1) : undefined;
  const file = resolveFile(fileSpec, cwd);
  // The app API, loaded before any hook: the app's `import "anyserve"` (which the hooks map here)
  // then finds it loaded — through tsx's hooks it would cost ~60 ms of a TypeScript worker's boot —
  // and a CommonJS app's require("anyserve"), which Node cannot serve through asynchronous hooks
  // unless the module is already loaded, works.
  await import("anyserve");
  if (/\.[cm]?tsx?$/.test(file) && !tsxRegistered) {
    const tsx = await import("tsx/esm/api");
    tsx.register();
    tsxRegistered = true;
  }
  // After tsx: hooks registered later run first, so these see tsx's resolution and correct it.
  if (needsAppHooks(file)) registerAppHooks();
  let mod: Record<string, unknown>;
  try {
    mod = (file.endsWith(".cts") ? await requireCts(file) : await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new AppLoadError("import_failed", `${file} failed to load: ${why}`, file);
  }
  const names = exportName ? [exportName] : ["app", "default"];
  for (const name of names) {
    if (isApp(mod[name])) return mod[name] as AnyServe;
    if (isServiceClass(mod[name])) {
      return serviceApp(service ?? process.env.ANYSERVE_SERVICE ?? name, mod[name] as never, args);
    }
  }
  throw noExport(file, names, mod);
}

/**
 * Whether loading `file` needs the app hooks: when `anyserve` does not resolve from its folder, or
 * when its package type may not be what its syntax is (a `.ts`/`.js` file whose package is not
 * ESM). An app in a project that installed anyserve as an ES module loads without them — hooks run
 * on a thread of their own, which a worker would otherwise start for nothing (~30 ms of its boot).
 */
function needsAppHooks(file: string): boolean {
  try {
    createRequire(file).resolve("anyserve");
  } catch {
    return true;
  }
  if (!/\.(?:ts|tsx|js|jsx)$/.test(file)) return false;
  return packageType(path.dirname(file)) !== "module";
}

/** The `type` of the nearest package.json above `dir` ("commonjs" when it says none). */
function packageType(dir: string): string | undefined {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      return (JSON.parse(readFileSync(path.join(at, "package.json"), "utf8")) as { type?: string }).type ?? "commonjs";
    } catch {
      if (path.dirname(at) === at) return undefined;
    }
  }
}

/** Why an app could not be loaded: its file is missing, its module threw, or it exports no app under the name. */
export class AppLoadError extends Error {
  constructor(
    readonly kind: "not_found" | "import_failed" | "no_export",
    message: string,
    readonly file: string,
    /** `no_export`: what the module does export that could be served. */
    readonly servable: string[] = [],
  ) {
    super(message);
    this.name = "AppLoadError";
  }
}

function noExport(file: string, names: string[], mod: Record<string, unknown>): AppLoadError {
  const servable = Object.keys(mod).filter((k) => isApp(mod[k]) || isServiceClass(mod[k]));
  const wanted = names[0]!;
  const near = servable.find((k) => k.toLowerCase() === wanted.toLowerCase()) ?? closest(wanted, servable);
  const hint = near ? `; did you mean '${near}'?` : "";
  const list =
    servable.length > 0
      ? ` (it exports ${servable.map((k) => `'${k}'`).join(", ")} that could be served)`
      : " (it exports no AnyServe app and no class)";
  return new AppLoadError(
    "no_export",
    `${file} has no AnyServe app or service class exported as ${names.map((n) => `'${n}'`).join(" or ")}${hint}${list}`,
    file,
    servable,
  );
}

function resolveFile(spec: string, cwd: string): string {
  const direct = path.resolve(cwd, spec);
  if (existsSync(direct)) return direct;
  const candidates = [".ts", ".js", ".mts", ".mjs"].flatMap((ext) => {
    const dotted = /^[\w.]+$/.test(spec) ? [path.resolve(cwd, spec.replace(/\./g, "/") + ext)] : [];
    return [direct + ext, ...dotted];
  });
  const hit = candidates.find((c) => existsSync(c));
  if (!hit) {
    throw new AppLoadError("not_found", `app file not found: ${spec} (looked for ${[direct, ...candidates].join(", ")})`, direct);
  }
  return hit;
}
