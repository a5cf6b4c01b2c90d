/**
 * Where a class given to the Environment API was defined, as `FILE:export` — what thread and
 * process workers need to load it themselves (`registerLocalServicePool(name, Class)` names no
 * file, as in the seed). V8 knows: the inspector reports a function's `[[FunctionLocation]]`
 * (script id), and the script's URL; the module at that URL names the export that is the class.
 *
 * Undefined when that cannot be found — the class is not exported, or comes from a non-file
 * script — and an Error when the module is the program's main module: every worker would run the
 * program again (and start another environment). The caller then asks for `app: "FILE:export"`.
 */
import { realpathSync } from "node:fs";
import { Session } from "node:inspector";
import { fileURLToPath } from "node:url";

export async function classModuleSpec(Class: abstract new (...args: never[]) => unknown): Promise<string | undefined> {
  const url = scriptUrlOf(Class);
  if (!url?.startsWith("file:")) return undefined;
  const file = fileURLToPath(url);
  const main = process.argv[1];
  if (main !== undefined && samePath(file, main)) {
    throw new Error(`it is defined in the program's main module (${file}), which every worker would run again`);
  }
  const mod = (await import(url)) as Record<string, unknown>;
  const name = Object.keys(mod).find((k) => mod[k] === Class);
  return name === undefined ? undefined : `${file}:${name}`;
}

/** The URL of the script that defines `fn`, read through an in-process inspector session (synchronous). */
function scriptUrlOf(fn: unknown): string | undefined {
  const session = new Session();
  session.connect();
  const key = `__anyserveLocate${process.hrtime.bigint()}`;
  const g = globalThis as Record<string, unknown>;
  g[key] = fn;
  const urls = new Map<string, string>();
  let url: string | undefined;
  try {
    session.on("Debugger.scriptParsed", (m) => urls.set(m.params.scriptId, m.params.url));
    // In-process sessions answer synchronously: each callback has run when post() returns.
    let objectId: string | undefined;
    session.post("Runtime.evaluate", { expression: `globalThis[${JSON.stringify(key)}]` }, (err, r) => {
      if (!err) objectId = r.result.objectId;
    });
    let scriptId: string | undefined;
    if (objectId !== undefined) {
      session.post("Runtime.getProperties", { objectId, ownProperties: true }, (err, r) => {
        const loc = err ? undefined : r.internalProperties?.find((p) => p.name === "[[FunctionLocation]]");
        scriptId = (loc?.value?.value as { scriptId?: string } | undefined)?.scriptId;
      });
    }
    if (scriptId !== undefined) {
      // Enabling the debugger reports every script already parsed, with its URL.
      session.post("Debugger.enable", () => {
        url = urls.get(scriptId!);
      });
      session.post("Debugger.disable");
    }
  } finally {
    delete g[key];
    session.disconnect();
  }
  return url;
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return a === b;
  }
}
