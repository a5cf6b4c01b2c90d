// What a worker loads to run a handler. A worker thread and a worker process of a no-op app are
// booted through the built entries (dist/execution/worker-thread.js, worker-process.js, as a
// replica started from the package runs them), with an API server and an object store configured
// but never used, serve one request, and record every module they loaded: ESM modules through
// module hooks (test/helpers/load-recorder-hooks.mjs), CommonJS files from require.cache. Server
// code (gateway, deploy, cli, dashboard, replica, metrics, front ends, routing), the client's
// transports, the object store and the heavy packages must not be among them; they load on
// first use (ctx.call, ctx.objects) or never in a worker.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

type LaneModule = typeof import("../../src/execution/lane.js");
type PortModule = typeof import("../../src/execution/thread-port.js");
type ProtocolModule = typeof import("../../src/execution/worker-protocol.js");

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DIST = path.join(ROOT, "dist");
const dist = <T>(file: string): Promise<T> => import(pathToFileURL(path.join(DIST, file)).href) as Promise<T>;
const APP = `${path.join(ROOT, "test/fixtures/noop_app.ts")}:app`;
const HOOKS = pathToFileURL(path.join(ROOT, "test/helpers/load-recorder-hooks.mjs")).href;
const RECORDER = pathToFileURL(path.join(ROOT, "test/helpers/load-recorder.mjs")).href;
const BODY = Buffer.from(JSON.stringify({ inputs: [{ name: "x", datatype: "FP64", shape: [1], data: [1] }] }));

/** anyserve's own files a handler's worker must not load (src/ under tsx, dist/ when built). */
const FORBIDDEN_FILES: [string, RegExp][] = [
  ["server code", /\/(?:src|dist)\/(?:gateway|deploy|cli|dashboard|replica|metrics|frontend)\//],
  ["the routing core (loaded by ctx.call's direct path)", /\/(?:src|dist)\/routing\//],
  ["the server entry", /\/(?:src|dist)\/server\.[jt]s$/],
  ["the client's transports (loaded by ctx.call)", /\/(?:src|dist)\/sdk\/(?:direct\/|client-rest\.|client-grpc\.)/],
  ["the object store (loaded by ctx.objects)", /\/(?:src|dist)\/objects\/(?:store|remote|endpoint|backends\/)/],
  ["the pino logger (workers use util/log.ts)", /\/(?:src|dist)\/util\/logger\.[jt]s$/],
];
const FORBIDDEN_PACKAGES = ["pino", "zod", "yaml", "commander", "prom-client", "@grpc/grpc-js", "protobufjs", "undici"];

function check(kind: string, loaded: string[]): void {
  const ours = loaded.filter((u) => u.startsWith(pathToFileURL(ROOT).href) && !u.includes("/node_modules/"));
  const packages = new Set(loaded.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []));
  const listing = `${kind} loaded:\n  ${[...new Set(ours.map((u) => path.relative(ROOT, fileURLToPath(u))))].join("\n  ")}\n  packages: ${[...packages].join(", ")}`;
  if (process.env.SHOW_LOADS) console.log(listing);
  // The recorder saw the worker's own path (else an empty record would pass).
  for (const must of ["/execution/worker-runtime.js", "/sdk/app.js", "/test/fixtures/noop_app.ts"]) {
    assert.ok(
      ours.some((u) => u.endsWith(must)),
      `${kind}: expected ${must} among the loaded modules\n${listing}`,
    );
  }
  for (const [what, pattern] of FORBIDDEN_FILES) {
    const bad = ours.filter((u) => pattern.test(u));
    assert.deepEqual(bad, [], `${kind} loaded ${what}\n${listing}`);
  }
  const badPackages = FORBIDDEN_PACKAGES.filter((p) => packages.has(p));
  assert.deepEqual(badPackages, [], `${kind} loaded ${badPackages.join(", ")}\n${listing}`);
}

function recordFile(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "anyserve-loads-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, "loaded.txt");
}

const read = (file: string): string[] => readFileSync(file, "utf8").split("\n").filter(Boolean);

test("a worker thread of a no-op app loads only what running a handler needs", async (t) => {
  const out = recordFile(t);
  const storeDir = path.dirname(out);
  const { ThreadOutbox, unpack } = await dist<PortModule>("execution/thread-port.js");
  const { Msg, runMessage } = await dist<ProtocolModule>("execution/worker-protocol.js");
  const entry = pathToFileURL(path.join(DIST, "execution/worker-thread.js")).href;
  // As thread-handle.ts's bootstrap, with the recorder registered first. The entry's import
  // resolves once the worker has booted; CommonJS files are in this thread's require.cache.
  const code = `const { register, createRequire } = await import("node:module");
    const { appendFileSync } = await import("node:fs");
    const { pathToFileURL } = await import("node:url");
    register(${JSON.stringify(HOOKS)}, { data: { out: ${JSON.stringify(out)} } });
    await import(${JSON.stringify(entry)});
    const cjs = Object.keys(createRequire(${JSON.stringify(entry)}).cache).map((f) => pathToFileURL(f).href + "\\n");
    appendFileSync(${JSON.stringify(out)}, cjs.join(""));
    (await import("node:worker_threads")).parentPort.postMessage({ recorded: true });`;
  const worker = new Worker(code, {
    eval: true,
    workerData: {
      appSpec: APP,
      replicaId: "r",
      worker: "thread-1",
      apiServer: "http://127.0.0.1:1",
      objects: { dir: storeDir },
    },
  });
  t.after(() => worker.terminate());
  const outbox = new ThreadOutbox(worker);
  let ready = false;
  const answered = new Promise<unknown>((resolve, reject) => {
    worker.on("error", reject);
    worker.on("message", (m: unknown) => {
      if ((m as { recorded?: boolean }).recorded) {
        // Start handler 0 (its onStart), then run one job of it.
        outbox.send(Msg.OPEN, 0, { h: 0 });
        const { meta, body } = runMessage(0, "infer", [
          { call: { q: { type: "noop" }, f: "json", rid: "t1", dl: Date.now() + 30_000 }, body: BODY },
        ]);
        outbox.send(Msg.RUN, 1, meta, body);
        outbox.flush();
        return;
      }
      unpack(m, (type, _id, meta, body) => {
        if (type === Msg.READY) ready = true;
        else if (type === Msg.BOOT_FAILED) reject(new Error(`boot failed: ${JSON.stringify(meta)}`));
        else if (type === Msg.RESULT) resolve(JSON.parse(body.toString()));
      });
    });
  });
  const answer = (await answered) as { outputs: { name: string; data: unknown[] }[] };
  assert.ok(ready, "the worker said READY");
  assert.equal(answer.outputs[0]?.name, "ok");
  check("a worker thread", read(out));
});

test("a worker process of a no-op app loads only what running a handler needs", async (t) => {
  const out = recordFile(t);
  const { Lane } = await dist<LaneModule>("execution/lane.js");
  const { createExecution } = await dist<typeof import("../../src/execution/index.js")>("execution/index.js");
  const { silentLogger } = await dist<typeof import("../../src/util/log.js")>("util/log.js");
  const { Cancellation } = await dist<typeof import("../../src/util/cancel.js")>("util/cancel.js");
  const { loadApp } = await dist<typeof import("../../src/sdk/load-app.js")>("sdk/load-app.js");
  const app = await loadApp(APP);
  const lane = new Lane({
    entry: app.handlers[0]!,
    handler: 0,
    queueSize: 10,
    batchSize: 1,
    batchWaitMs: 1,
    idleTimeoutMs: 60_000,
    logger: silentLogger,
    onState: () => undefined,
    execution: createExecution("process", {
      env: { app, replicaId: "r", logger: silentLogger },
      appSpec: APP,
      apiServer: "http://127.0.0.1:1",
      threads: 1,
      maxThreads: 1,
      graceMs: 1_000,
      startRetries: 1,
      poolIdleMs: 60_000,
      // The child gets only the environment variables listed here (process-handle.ts).
      workerEnv: ["NODE_OPTIONS", "ANYSERVE_LOAD_RECORD"],
    }),
  });
  const saved = { NODE_OPTIONS: process.env.NODE_OPTIONS, ANYSERVE_LOAD_RECORD: process.env.ANYSERVE_LOAD_RECORD };
  process.env.NODE_OPTIONS = `--import ${RECORDER}`;
  process.env.ANYSERVE_LOAD_RECORD = out;
  try {
    await lane.start();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  let stopped = false;
  t.after(() => (stopped ? undefined : lane.stop()));
  const task = { call: { q: { type: "noop" }, f: "json" as const, rid: "p1", dl: Date.now() + 30_000 }, body: BODY };
  const answer = JSON.parse((await lane.run(task, new Cancellation())).body.toString()) as { outputs: { name: string }[] };
  assert.equal(answer.outputs[0]?.name, "ok");
  await lane.stop(); // the child exits, and writes what it loaded
  stopped = true;
  check("a worker process", read(out));
});
