// `up` refuses apps it could not serve before any process starts: a missing file, a module that
// fails to import, an export that does not exist (with what does and a did-you-mean), and the
// seed's layout without `app:` (with what to add). Exit 2, one report, nothing left running.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { BIN } from "../helpers/processes.js";

const run = promisify(execFile);

async function up(yaml: string, files: Record<string, string>): Promise<{ code: number; stderr: string; stdout: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-check-"));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    writeFileSync(path.join(dir, "anyserve.yaml"), yaml);
    return await run(process.execPath, [BIN, "up", path.join(dir, "anyserve.yaml"), "--port", "0", "--grpc-port", "0"], {
      timeout: 90_000,
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const KV = `export class KVService {
  #m = new Map<string, unknown>();
  get(k: string) { return this.#m.get(k) ?? null; }
  set(k: string, v: unknown) { this.#m.set(k, v); return true; }
}
export const helper = 1;
`;

test("a missing file, a module that throws and a misspelt export are each reported once, and nothing starts", async () => {
  const r = await up(
    `services:
  gone: { app: ./nope.ts:app }
  throws: { app: ./throws.ts:app }
  typo: { app: ./kv.ts:KVServce }
  fine: { app: ./kv.ts:KVService }
`,
    { "throws.ts": `throw new Error("no weights at /models/x");\n`, "kv.ts": KV },
  );
  assert.equal(r.code, 2, r.stderr);
  assert.doesNotMatch(r.stdout, /ANYSERVE_READY|API server listening/, "nothing started");
  assert.match(r.stderr, /3 problem\(s\)/);
  assert.match(r.stderr, /services\.gone\.app: app file not found: .*nope\.ts/);
  assert.match(r.stderr, /services\.throws\.app: .*throws\.ts failed to load: no weights at \/models\/x/);
  assert.match(
    r.stderr,
    /services\.typo\.app: .*kv\.ts has no AnyServe app or service class exported as 'KVServce'; did you mean 'KVService'\? \(it exports 'KVService'/,
  );
  assert.doesNotMatch(r.stderr, /services\.fine/);
});

test("the seed's layout without app: says what to add", async () => {
  const r = await up("services:\n  kv_service:\n    deployment: { threading_strategy: multi, thread_count: 4 }\n", {});
  assert.equal(r.code, 2);
  assert.match(r.stderr, /services\.kv_service\.app: missing: add the module that serves the service.*`app: \.\/kv_service\.ts:KvService`/);
});
