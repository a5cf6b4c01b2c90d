/**
 * Module customization hooks for loading a user's app (registered by `load-app.ts` with
 * `module.register`; they run on Node's loader thread, so this file imports nothing of ours).
 *
 * - `anyserve` and `anyserve/*` resolve to the running anyserve, from wherever the app is: an app
 *   in a folder without `node_modules` works, and the app and the server share one copy.
 * - A `.ts` or `.js` file outside `node_modules` loads in the module system its syntax is written
 *   in, whatever the nearest `package.json` says: a folder with none, or with `"type": "commonjs"`
 *   (what `npm init` writes), holds ESM apps as often as not. Node itself detects ESM syntax in
 *   such `.js` files; tsx, which loads TypeScript, goes by the package type and turns an ESM `.ts`
 *   into CommonJS, which then fails (`Cannot require() ES Module … in a cycle`).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface ResolveResult {
  url: string;
  format?: string | null | undefined;
  shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context: { parentURL?: string | undefined; conditions?: string[] }) => Promise<ResolveResult>;

let selfUrl: string | undefined;

/** `data.self`: the URL of the running anyserve's package.json. */
export function initialize(data: { self: string }): void {
  selfUrl = data.self;
}

/** Static `import … from`, `import "x"`, `export …` at the start of a line: ESM. `import(` is not. */
const ESM_SYNTAX = /^[ \t]*(?:import[ \t]*[\w*{"'$]|export[ \t{*])/m;
/** `require(`, `module.exports`, `exports.x` without ESM syntax: CommonJS. */
const CJS_SYNTAX = /\brequire[ \t]*\(|\bmodule\.exports\b|^[ \t]*exports\.\w/m;

export async function resolve(specifier: string, context: { parentURL?: string | undefined }, next: NextResolve): Promise<ResolveResult> {
  if (selfUrl !== undefined && (specifier === "anyserve" || specifier.startsWith("anyserve/"))) {
    return next(specifier, { ...context, parentURL: selfUrl });
  }
  const resolved = await next(specifier, context);
  const format = formatBySyntax(resolved);
  return format === undefined ? resolved : { ...resolved, format };
}

/** The format a file's own syntax asks for, when it contradicts the one its package type gives. */
function formatBySyntax(r: ResolveResult): string | undefined {
  if (!r.url.startsWith("file:") || r.url.includes("/node_modules/") || !/\.(?:ts|tsx|js|jsx)$/.test(r.url)) return undefined;
  const asCjs = r.format === "commonjs" || r.format === "commonjs-typescript" || r.format === undefined || r.format === null;
  const asEsm = r.format === "module" || r.format === "module-typescript";
  if (!asCjs && !asEsm) return undefined;
  let source: string;
  try {
    source = readFileSync(fileURLToPath(r.url), "utf8");
  } catch {
    return undefined;
  }
  const esm = ESM_SYNTAX.test(source);
  if (asCjs && esm) return "module";
  if (asEsm && !esm && CJS_SYNTAX.test(source)) return "commonjs";
  return undefined;
}
