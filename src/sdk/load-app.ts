/**
 * Loads a user app from `FILE[:export]` — TypeScript directly (through tsx), no build step for
 * the user. The seed's dotted form (`examples.chat_app:app`) is accepted too. A class export is
 * served as a class service (see service.ts).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { isApp, type AnyServe } from "./app.js";
import { isServiceClass, serviceApp } from "./service.js";

let tsxRegistered = false;

export interface LoadAppOptions {
  cwd?: string;
  /**
   * The service name for a class export (its methods become `{service, method}`); defaults to
   * `$ANYSERVE_SERVICE` (set by `anyserve start --service`, so worker threads agree), then the
   * export's name.
   */
  service?: string;
}

export async function loadApp(spec: string, opts: LoadAppOptions | string = {}): Promise<AnyServe> {
  const { cwd = process.cwd(), service } = typeof opts === "string" ? { cwd: opts } : opts;
  const colon = spec.lastIndexOf(":");
  const hasExport = colon > 1; // not a Windows drive letter
  const fileSpec = hasExport ? spec.slice(0, colon) : spec;
  const exportName = hasExport ? spec.slice(colon + 1) : undefined;
  const file = resolveFile(fileSpec, cwd);
  if (/\.[cm]?tsx?$/.test(file) && !tsxRegistered) {
    await preloadAppApi(file);
    const { register } = await import("tsx/esm/api");
    register();
    tsxRegistered = true;
  }
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const names = exportName ? [exportName] : ["app", "default"];
  for (const name of names) {
    if (isApp(mod[name])) return mod[name] as AnyServe;
    if (isServiceClass(mod[name])) {
      return serviceApp(service ?? process.env.ANYSERVE_SERVICE ?? name, mod[name] as never);
    }
  }
  const found = Object.keys(mod).filter((k) => isApp(mod[k]));
  throw new Error(
    `${file} has no AnyServe app exported as ${names.map((n) => `'${n}'`).join(" or ")}` +
      (found.length ? `; it exports apps named ${found.join(", ")}` : ""),
  );
}

/**
 * Loads `anyserve` as the app file resolves it, before tsx's module hooks are in place. Every
 * module loaded after them goes through tsx's hooks thread, a round trip each; a worker that has
 * not loaded the app API yet would load it that way (measured: the no-op app loaded in ~28 ms
 * through the hooks, ~14 ms with this). Nothing happens when the app's folder does not resolve
 * `anyserve`.
 */
async function preloadAppApi(appFile: string): Promise<void> {
  let api: string;
  try {
    api = createRequire(appFile).resolve("anyserve");
  } catch {
    return;
  }
  await import(pathToFileURL(api).href);
}

function resolveFile(spec: string, cwd: string): string {
  const direct = path.resolve(cwd, spec);
  if (existsSync(direct)) return direct;
  const candidates = [".ts", ".js", ".mts", ".mjs"].flatMap((ext) => {
    const dotted = /^[\w.]+$/.test(spec) ? [path.resolve(cwd, spec.replace(/\./g, "/") + ext)] : [];
    return [direct + ext, ...dotted];
  });
  const hit = candidates.find((c) => existsSync(c));
  if (!hit) throw new Error(`app file not found: ${spec} (looked in ${cwd})`);
  return hit;
}
