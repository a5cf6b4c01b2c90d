// An app loads from any folder: outside the repository, with no package.json, with the CommonJS
// one `npm init` writes and with an ESM one, as .ts, .mts, .cts, .js and .mjs — and in worker
// threads and processes too, and under `anyserve up`. The app imports `anyserve` though its folder
// has no node_modules: it gets the running anyserve.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { startApiServerProc, startCli, startReplicaProc, waitFor } from "../helpers/processes.js";

const ESM_TS = (tag: string) => `import { AnyServe } from "anyserve";
import type { InferenceRequest } from "anyserve";
export const app = new AnyServe();
app.capability({ type: "${tag}" }, (req: InferenceRequest) => \`${tag}: \${String(req.value("text"))}\`);
`;
const ESM_JS = (tag: string) => `import { AnyServe } from "anyserve";
export const app = new AnyServe();
app.capability({ type: "${tag}" }, (req) => \`${tag}: \${String(req.value("text"))}\`);
`;
const CJS_JS = (tag: string) => `const { AnyServe } = require("anyserve");
const app = new AnyServe();
app.capability({ type: "${tag}" }, (req) => \`${tag}: \${String(req.value("text"))}\`);
module.exports = { app };
`;

/** What each file holds: `.js` in ESM syntax where the package says ESM (CommonJS syntax there is not JavaScript Node runs). */
const FILES: Record<string, (tag: string) => string> = {
  ".ts": ESM_TS,
  ".mts": ESM_TS,
  ".cts": ESM_TS,
  ".js": ESM_JS,
  ".mjs": ESM_JS,
  ".cjs": CJS_JS,
};

const PACKAGES: Record<string, string | undefined> = {
  none: undefined,
  commonjs: JSON.stringify({ name: "my-app", version: "1.0.0", type: "commonjs" }),
  module: JSON.stringify({ name: "my-app", version: "1.0.0", type: "module" }),
};

function folder(t: { after(fn: () => void): void }, pkg: string | undefined): string {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-app-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  if (pkg !== undefined) writeFileSync(path.join(dir, "package.json"), pkg);
  return dir;
}

async function ask(url: string, type: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-capability-type": type },
    body: JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["hi"] }] }),
  });
  const body = (await res.json()) as { outputs?: { data: string[] }[]; error?: string };
  return { status: res.status, text: body.outputs?.[0]?.data[0] ?? body.error ?? "" };
}

for (const [pkgName, pkg] of Object.entries(PACKAGES)) {
  test(`apps load from a folder with ${pkgName === "none" ? "no package.json" : `a "${pkgName}" package.json`}: ${Object.keys(FILES).join(", ")}`, async (t) => {
    const dir = folder(t, pkg);
    const api = await startApiServerProc(t);
    const url = api.ready.url!;
    const apps: [tag: string, file: string][] = [];
    for (const [ext, source] of Object.entries(FILES)) {
      const tag = `app_${ext.slice(1)}`;
      apps.push([tag, path.join(dir, `${tag}${ext}`)]);
      writeFileSync(apps.at(-1)![1], source(tag));
    }
    // A CommonJS `.js` app too where the package is not ESM.
    if (pkgName !== "module") {
      apps.push(["app_cjs_js", path.join(dir, "app_cjs_js.js")]);
      writeFileSync(apps.at(-1)![1], CJS_JS("app_cjs_js"));
    }
    await Promise.all(apps.map(([, file]) => startReplicaProc(t, url, `${file}:app`)));
    const tags = apps.map(([tag]) => tag);
    for (const tag of tags) {
      const answer = await waitFor(`${tag} answers`, async () => {
        const a = await ask(url, tag);
        return a.status === 200 ? a : undefined;
      });
      assert.equal(answer?.text, `${tag}: hi`);
    }
  });
}

test("an app in an ordinary folder runs in worker threads and processes, and under anyserve up", async (t) => {
  const dir = folder(t, PACKAGES.commonjs);
  writeFileSync(path.join(dir, "my_app.ts"), ESM_TS("mine"));
  const api = await startApiServerProc(t);
  const url = api.ready.url!;
  await startReplicaProc(t, url, `${path.join(dir, "my_app.ts")}:app`, ["--threading-strategy", "multi", "--thread-count", "1"]).catch(
    (err: Error) => {
      throw new Error(`multi: ${err.message}`);
    },
  );
  assert.equal((await ask(url, "mine")).text, "mine: hi");

  const upDir = folder(t, undefined);
  writeFileSync(path.join(upDir, "my_app.ts"), ESM_TS("mine_up"));
  writeFileSync(
    path.join(upDir, "anyserve.yaml"),
    "api_server: { port: 0, grpc_port: null }\nservices:\n  mine:\n    app: ./my_app.ts:app\n    deployment: { threading_strategy: process, thread_count: 1 }\n",
  );
  const up = await startCli(t, ["up", path.join(upDir, "anyserve.yaml")], {}, 60_000);
  assert.equal((await ask(up.ready.url!, "mine_up")).text, "mine_up: hi");
});
