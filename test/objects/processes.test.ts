// Real processes: a 100 MB object made in replica A is read byte-identical by B (same directory)
// and C (another directory, fetched from A's endpoint), each within idle RSS + 100 MB; a writer
// killed with SIGKILL in the middle of `create` leaves no object, and `cleanup` removes its temp.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { ObjectStore } from "../../src/objects/store.js";
import { Client } from "../../src/sdk/client.js";
import { rawRequest } from "../helpers/raw-http.js";
import { Cleanups, ROOT, registryIds, startApiServerProc, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";
import { patternHash } from "./fixtures/pattern.js";
import { rejectsWith, tempDir, temps } from "./helpers.js";

const TOKEN = "cluster-token";
const MB = 100;
const APP = path.join(ROOT, "test", "objects", "fixtures", "objects_app.ts:app");
const hooks = new Cleanups();
let dirAB: string;
let dirC: string;
const replicas: Record<string, Proc> = {};
const clients: Record<string, Client> = {};

type Answer = Record<string, unknown>;
/** Outputs come back as a value or a one-element array/typed array. */
const first = (v: unknown): unknown => (typeof v === "object" && v !== null && "length" in v ? (v as ArrayLike<unknown>)[0] : v);
const num = (v: unknown): number => Number(first(v));
const str = (v: unknown): string => String(first(v));

describe("objects between replica processes", () => {
  before(async () => {
    dirAB = tempDir(hooks);
    dirC = tempDir(hooks);
    const api = await startApiServerProc(hooks, ["--token", TOKEN]);
    const dirs: Record<string, string> = { a: dirAB, b: dirAB, c: dirC };
    await Promise.all(
      Object.entries(dirs).map(async ([name, dir]) => {
        replicas[name] = await startReplicaProc(hooks, api.ready.url!, APP, [
          "--replica-id",
          `replica-${name}`,
          "--object-store",
          dir,
          "--token",
          TOKEN,
        ]);
        clients[name] = new Client({ endpoint: replicas[name]!.ready.http!, timeout: 60_000 });
        hooks.after(() => clients[name]!.close());
      }),
    );
    await waitFor("3 replicas registered", async () => (await registryIds(api.ready.url!, TOKEN)).length === 3);
  });
  after(() => hooks.run());

  test(`a ${MB} MB object: made in A, read by B (same dir) and C (fetched from A), byte-identical, RSS bounded`, async (t) => {
    const expected = await patternHash(MB);
    const made = (await clients.a!.infer({ type: "obj_make" }, { mb: MB })) as Answer;
    const ref = str(made.ref);
    assert.equal(str(made.sha256), expected);
    assert.equal(num(made.size), MB << 20);
    assert.match(ref, /&owner=replica-a&url=http/);
    const report = [`A create: idle ${mb(made.idle_rss)} peak ${mb(made.peak_rss)}`];
    const budget = 100 * 1024 * 1024;
    assert.ok(num(made.peak_rss) - num(made.idle_rss) < budget, report[0]);

    for (const [name, cache] of [
      ["b", "no"],
      ["c", "no"],
      ["c", "yes"],
    ] as const) {
      const read = (await clients[name]!.infer({ type: "obj_read" }, { ref, cache })) as Answer;
      const line = `${name.toUpperCase()} read (cache ${cache}): idle ${mb(read.idle_rss)} peak ${mb(read.peak_rss)}`;
      report.push(line);
      assert.equal(str(read.sha256), expected, line);
      assert.equal(num(read.size), MB << 20, line);
      assert.ok(num(read.peak_rss) - num(read.idle_rss) < budget, line);
      if (name === "c") {
        const files = readdirSync(dirC).filter((f) => f.endsWith(".obj"));
        assert.equal(files.length, cache === "yes" ? 1 : 0, `C's directory after a read with cache ${cache}: ${files.join(", ")}`);
      }
    }
    t.diagnostic(`peak RSS: ${report.join("; ")}`);
  });

  test("small JSON objects through ctx.objects: made in A, read in C", async () => {
    const ref = str(await clients.a!.infer({ type: "obj_put" }, { text: "héllo from A" }));
    assert.equal(str(await clients.c!.infer({ type: "obj_get" }, { ref })), "héllo from A");
  });

  test("the endpoint of a real replica: token required, traversal refused", async () => {
    const port = Number(new URL(replicas.a!.ready.http!).port);
    const noToken = await rawRequest(port, ["GET /objects/anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]);
    assert.equal(noToken.status, 401);
    for (const p of [
      "/objects/../../etc/passwd",
      "/objects/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      "/objects/%252e%252e",
      "/objects/..\\..\\etc",
      "/objects//etc/passwd",
      "/objects/a%00b",
    ]) {
      const res = await rawRequest(port, [`GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`]);
      assert.equal(res.status, 400, p);
      assert.ok(!res.body.includes("root:"), p);
    }
  });
});

describe("a writer killed in the middle of create", () => {
  test("SIGKILL mid-create: no object with that id becomes visible; cleanup removes the dead writer's temp file only", async (t) => {
    const dir = tempDir(t);
    const victim = await startWriter(t, dir, "half-written");
    const survivor = await startWriter(t, dir, "still-writing");
    const before = temps(dir);
    assert.equal(before.length, 2);
    for (const f of before) assert.ok(statSync(path.join(dir, f)).size > 4 << 20, `${f} holds the first 4 MiB`);
    victim.kill("SIGKILL");
    await new Promise((r) => victim.once("exit", r));

    const store = new ObjectStore({ dir });
    assert.equal(await store.exists("half-written"), false);
    await rejectsWith(store.get("half-written"), "OBJECT_NOT_FOUND");
    assert.deepEqual(await store.list(), []);
    assert.equal(temps(dir).length, 2, "the dead writer's temp file is still there until cleanup");
    assert.equal(await store.cleanup(3600), 0);
    const left = temps(dir);
    assert.equal(left.length, 1, "cleanup removed the dead writer's temp file");
    assert.match(left[0]!, /\.still-writing$/, "and kept the live writer's");

    survivor.stdin!.end("go\n");
    const done = await new Promise<number | null>((r) => survivor.once("exit", r));
    assert.equal(done, 0);
    assert.equal(await store.exists("still-writing"), true);
    assert.deepEqual(temps(dir), []);
  });
});

/** Starts a writer child and resolves once it has written 4 MiB into its temp file and stopped. */
function startWriter(t: { after(fn: () => unknown): void }, dir: string, key: string) {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "test/objects/fixtures/writer.ts"), dir, key], {
    stdio: ["pipe", "pipe", "inherit"],
    cwd: ROOT,
  });
  t.after(() => child.kill("SIGKILL"));
  return new Promise<typeof child>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => line === "WRITING" && resolve(child));
    child.once("exit", (code) => reject(new Error(`writer ${key} exited (${code}) before writing`)));
  });
}

function mb(v: unknown): string {
  return `${(num(v) / 1024 / 1024).toFixed(0)} MB`;
}
