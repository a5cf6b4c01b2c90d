// Python apps end to end, with real processes: the Python demo (examples/python_demo/) behind an
// API server, each replica with its own object store directory (so objects cross replicas by peer
// fetch, which a Python worker asks its replica to do). REST /infer, /infer/json in the seed's
// `contents` form, /v2/models/{m}/infer, gRPC ModelInfer and ModelStreamInfer, SSE; a TypeScript
// service and Python handlers calling each other and passing objects by ref; the seed's scenario 2
// (delegation) and 4 (a worker started on demand and stopped when idle); errors.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Environment } from "../../src/deploy/environment.js";
import { Client } from "../../src/sdk/client.js";
import {
  BIN,
  Cleanups,
  FIXTURES,
  ROOT,
  registryIds,
  startApiServerProc,
  startCli,
  startReplicaProc,
  waitFor,
  type Proc,
} from "../helpers/processes.js";
import { freshReplicaId, infer, marks, workersRoute } from "../execution/helpers.js";

const DEMO = path.join(ROOT, "examples", "python_demo");
const run = promisify(execFile);

describe("Python apps behind the API server", () => {
  const hooks = new Cleanups();
  const dirs: string[] = [];
  let api: Proc;
  const reps: Record<string, Proc> = {};
  let rest: Client;
  let grpc: Client;

  before(async () => {
    api = await startApiServerProc(hooks, ["--grpc-port", "0"]);
    const start = (id: string, app: string, extra: string[]) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), `anyserve-py-e2e-${id}-`));
      dirs.push(dir);
      return startReplicaProc(hooks, api.ready.url!, path.join(DEMO, app), ["--replica-id", id, "--object-store", dir, ...extra]).then(
        (p) => (reps[id] = p),
      );
    };
    await Promise.all([
      start("py-chat", "chat_app.py:app", ["--threading-strategy", "async", "--thread-count", "4"]),
      start("py-embed", "embed_app.py:app", ["--threading-strategy", "multi", "--thread-count", "2"]),
      start("py-heavy", "heavy_app.py:app", ["--idle-timeout", "1"]),
      start("py-stream", "stream_app.py:app", ["--threading-strategy", "async", "--thread-count", "4"]),
      start("py-kv", "kv_service.py:KVService", ["--service", "kv"]),
      start("ts-notes", "notes_service.ts:NotesService", ["--service", "notes", "--threading-strategy", "async"]),
    ]);
    await waitFor("6 replicas registered", async () => (await registryIds(api.ready.url!)).length === 6, 30_000);
    rest = new Client({ apiServer: api.ready.url! });
    grpc = new Client({ apiServer: api.ready.grpc!, protocol: "grpc" });
  });
  after(async () => {
    await Promise.all([rest?.close(), grpc?.close()]);
    await hooks.run();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const json = (base: string, route: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${route}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));

  test("REST /infer: a Python handler answers (def handler on the async strategy)", async () => {
    const out = (await rest.infer({ type: "chat", model: "demo" }, { text: "hello" })) as { text: string; replica: string };
    assert.deepEqual(out, { text: "[demo] you said: hello", replica: "py-chat" });
  });

  test("POST /infer/json in the seed's contents form is answered in that form", async () => {
    const r = await json(
      api.ready.url!,
      "/infer/json",
      { model_name: "demo", inputs: [{ name: "text", datatype: "BYTES", shape: [1], contents: { bytes_contents: ["seed client"] } }] },
      { "x-capability-type": "chat", "x-capability-model": "llama-70b" },
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const outputs = r.body.outputs as { name: string; contents: { bytes_contents: string[] } }[];
    assert.equal(outputs.find((o) => o.name === "text")?.contents.bytes_contents[0], "[llama-70b] a very large answer to: seed client");
  });

  test("POST /v2/models/{m}/infer reaches the Python model; the answer names it", async () => {
    const r = await json(api.ready.url!, "/v2/models/demo/infer", {
      inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["v2"] }],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.model_name, "demo");
    assert.deepEqual((r.body.outputs as { name: string; data: string[] }[])[0]!.data, ["[demo] you said: v2"]);
  });

  test("gRPC ModelInfer: protobuf in, protobuf out, decoded by the Python worker's own codec", async () => {
    const out = (await grpc.infer({ type: "embed" }, { text: "grpc" })) as { embedding: Float32Array; chars: number; embedded_by: string };
    assert.ok(out.embedding instanceof Float32Array && out.embedding.length === 8);
    assert.equal(out.chars, 4);
    assert.equal(out.embedded_by, "py-embed");
  });

  test("gRPC ModelStreamInfer and SSE: a seed-style stream handler's chunks, in order, the first before the last is produced", async () => {
    const viaGrpc: unknown[] = [];
    for await (const t of grpc.stream({ type: "stream" }, { text: "one two three" }, { parameters: { delay_ms: 1 } })) viaGrpc.push(t);
    assert.deepEqual(viaGrpc, ["one", "two", "three"]);
    const t0 = performance.now();
    const at: number[] = [];
    const viaSse: unknown[] = [];
    for await (const t of rest.stream({ type: "stream" }, { text: "slow words here" }, { parameters: { delay_ms: 300 } })) {
      viaSse.push(t);
      at.push(performance.now() - t0);
    }
    assert.deepEqual(viaSse, ["slow", "words", "here"]);
    assert.ok(at[2]! - at[0]! >= 500, `chunks arrived at ${at.map((x) => x.toFixed(0)).join(", ")} ms: not one at a time`);
  });

  test("scenario 3: a Python handler stores an object and passes the ref; the Python callee on another replica fetches it through its replica", async () => {
    const out = (await rest.infer({ type: "chat", model: "objects" }, { text: "a long document" })) as {
      ref: string;
      embedded_by: string;
      chars: number;
    };
    assert.match(out.ref, /^obj:obj-[\w-]+\?size=\d+&type=application%2Fjson&owner=py-chat&url=http/);
    assert.equal(out.embedded_by, "py-embed");
    assert.equal(out.chars, "a long document".length);
  });

  test("Python → TypeScript → Python: call_service('notes') stores an object in TS, the Python embed reads it, the Python kv keeps its ref, and the Python caller reads it back", async () => {
    const out = (await rest.infer({ type: "chat", model: "notes" }, { text: "remember this" })) as {
      note: string;
      dims: number;
      kept: boolean;
    };
    assert.deepEqual(out, { note: "remember this", dims: 8, kept: true });
    // The TypeScript service's env.callService("kv").set went to the Python class service: its keys are there.
    const keys = (await rest.infer({ service: "kv", method: "keys" }, { args: "[]" })) as { result: string[] };
    assert.ok(keys.result.some((k) => k.startsWith("note-")));
  });

  test("a Python class service keeps one instance for all its methods: set then get", async () => {
    const set = (await rest.infer({ service: "kv", method: "set" }, { args: JSON.stringify(["colour", { name: "blue" }]) })) as {
      result: unknown;
    };
    assert.equal(set.result, true);
    const got = (await rest.infer({ service: "kv", method: "get" }, { args: JSON.stringify(["colour"]) })) as { result: unknown };
    assert.deepEqual(got.result, { name: "blue" });
  });

  test("scenario 2: a request sent to the wrong replica is delegated to the Python replica that serves it (REST and gRPC)", async () => {
    const wrongRest = new Client({ endpoint: reps["py-chat"]!.ready.http! });
    const wrongGrpc = new Client({ endpoint: reps["py-chat"]!.ready.grpc!, protocol: "grpc" });
    try {
      assert.equal(((await wrongRest.infer({ type: "embed" }, { text: "x" })) as { embedded_by: string }).embedded_by, "py-embed");
      assert.equal(((await wrongGrpc.infer({ type: "embed" }, { text: "x" })) as { embedded_by: string }).embedded_by, "py-embed");
    } finally {
      await Promise.all([wrongRest.close(), wrongGrpc.close()]);
    }
  });

  test("scenario 4: the lazy Python worker starts on the first request (its on_start ran) and stops after idle_timeout", async () => {
    const http = reps["py-heavy"]!.ready.http!;
    const state = async () =>
      ((await workersRoute(http, "GET", "/workers")).body.capabilities as { state: string; workers: { warm: number } }[])[0]!;
    await waitFor("heavy cold", async () => (await state()).state === "cold");
    const out = (await rest.infer({ type: "heavy" }, { ms: 10 })) as { done: string; replica: string; model_age_s: number };
    assert.equal(out.done, "worked 10 ms");
    assert.equal(out.replica, "py-heavy");
    assert.ok(out.model_age_s >= 0, "on_start loaded the model before the request ran");
    assert.equal((await state()).state, "warm");
    await waitFor("heavy cold again after idle_timeout", async () => (await state()).state === "cold", 10_000);
  });

  test("a Python exception is 500 WORKER_ERROR with its message, never its traceback; the replica logs the traceback", async () => {
    const r = await json(
      api.ready.url!,
      "/infer",
      { inputs: [{ name: "args", datatype: "BYTES", shape: [1], data: ['["only-a-key"]'] }] },
      { "x-capability-service": "kv", "x-capability-method": "set" },
    );
    assert.equal(r.status, 500);
    assert.equal(r.body.code, "WORKER_ERROR");
    assert.match(String(r.body.error), /missing 1 required positional argument: 'value'/);
    assert.doesNotMatch(String(r.body.error), /Traceback/);
    await waitFor("the traceback in the replica's log", () => reps["py-kv"]!.output.some((l) => l.includes("Traceback")));
  });
});

test("a Python class service deployed from YAML in an Environment is called from TypeScript: env.callService('kv')", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "anyserve-py-env-"));
  const env = new Environment();
  try {
    writeFileSync(
      path.join(dir, "services.yaml"),
      `services:\n  kv:\n    app: ${path.join(DEMO, "kv_service.py")}:KVService\n    deployment: { threading_strategy: single }\n`,
    );
    await env.loadServiceDeploymentConfig(path.join(dir, "services.yaml"));
    await env.start();
    const kv = env.callService("kv");
    await waitFor("the kv service to answer", async () => (await kv.keys!()) !== undefined, 30_000);
    assert.equal(await kv.set!("k", { v: [1, 2] }), true);
    assert.deepEqual(await kv.get!("k"), { v: [1, 2] });
    assert.deepEqual(await kv.keys!(), ["k"]);
  } finally {
    await env.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a Python worker's environment is minimal: the replica's GPU ids and the names in worker_env, never the token", async (t) => {
  const proc = await startCli(
    t,
    ["start", "--app", path.join(FIXTURES, "python", "env_app.py:app"), "--port", "0", "--worker-env", "EXTRA_SETTING"],
    { ANYSERVE_TOKEN: "s3cret-token", CUDA_VISIBLE_DEVICES: "1,3", EXTRA_SETTING: "on", UNRELATED_SETTING: "x" },
  );
  const client = new Client({ endpoint: proc.ready.http! });
  try {
    const out = (await client.infer({ type: "env" }, { x: 1 }, { headers: { authorization: "Bearer s3cret-token" } })) as {
      names: string[];
      gpus: string;
    };
    assert.equal(out.gpus, "1,3");
    assert.ok(out.names.includes("EXTRA_SETTING"));
    assert.ok(!out.names.includes("ANYSERVE_TOKEN"), "the token never reaches a worker");
    assert.ok(!out.names.includes("UNRELATED_SETTING"));
  } finally {
    await client.close();
  }
});

describe("Python workers over HTTP: deadlines, stuck handlers, crashes, a full queue", () => {
  const hooks = new Cleanups();
  const app = path.join(FIXTURES, "python", "exec_app.py:app");
  let proc: Proc;
  let single: Proc;
  let procId: string;
  before(async () => {
    procId = freshReplicaId("py-http");
    [proc, single] = await Promise.all([
      startCli(hooks, [
        "start",
        "--app",
        app,
        "--port",
        "0",
        "--replica-id",
        procId,
        "--threading-strategy",
        "process",
        "--thread-count",
        "2",
        "--abort-grace",
        "0.3",
      ]),
      startCli(hooks, ["start", "--app", app, "--port", "0", "--threading-strategy", "single", "--queue-size", "2"]),
    ]);
  });
  after(() => hooks.run());

  test("a deadline is 504 at the deadline, and the handler sees its cancellation", async () => {
    const r = await infer(
      proc.ready.http!,
      { type: "do" },
      { op: "sleep", ms: 30_000 },
      { "x-anyserve-timeout-ms": "400", "x-request-id": "late-1" },
    );
    assert.equal(r.status, 504);
    assert.equal(r.code, "DEADLINE_EXCEEDED");
    assert.ok(r.ms >= 350 && r.ms < 3_000, `answered after ${r.ms} ms`);
    await waitFor("the handler to see its cancellation", () => marks(procId, "aborted").includes("late-1"));
  });

  test("a handler stuck in a loop is 504 at its deadline, its process is killed and replaced, the next request succeeds", async () => {
    const r = await infer(proc.ready.http!, { type: "do" }, { op: "spin" }, { "x-anyserve-timeout-ms": "400" });
    assert.equal(r.status, 504);
    await waitFor("the stuck process to be replaced", async () => {
      const w = await workersRoute(proc.ready.http!, "GET", "/workers");
      return (
        (w.body.capabilities as { capability: Record<string, string>; replaced: number }[]).find((c) => c.capability.type === "do")!
          .replaced >= 1
      );
    });
    assert.equal((await infer(proc.ready.http!, { type: "do" }, { op: "echo", text: "after" })).status, 200);
  });

  test("a stream of more than its window (5,000 chunks) arrives whole and in order: the replica's credits reopen the Python worker's window", async () => {
    const client = new Client({ endpoint: proc.ready.http! });
    try {
      const got: unknown[] = [];
      for await (const t of client.stream({ type: "tokens" }, { n: 5_000 })) got.push(t);
      assert.equal(got.length, 5_000);
      assert.deepEqual([got[0], got[4_999]], ["t0", "t4999"]);
    } finally {
      await client.close();
    }
  });

  test("a worker process that exits mid-request fails only that request (502 WORKER_CRASHED)", async () => {
    const [crashed, other] = await Promise.all([
      infer(proc.ready.http!, { type: "do" }, { op: "exit" }),
      infer(proc.ready.http!, { type: "do" }, { op: "echo", text: "still here" }),
    ]);
    assert.equal(crashed.status, 502);
    assert.equal(crashed.code, "WORKER_CRASHED");
    assert.equal(other.status, 200);
    assert.equal((other.value as { text: string }).text, "still here");
  });

  test("a full queue is 503 QUEUE_FULL with Retry-After at once; the admitted requests are answered", async () => {
    const replies = await Promise.all(
      Array.from({ length: 12 }, () => infer(single.ready.http!, { type: "block" }, { ms: 300 }, { "x-anyserve-timeout-ms": "10000" })),
    );
    const full = replies.filter((r) => r.status === 503);
    const ok = replies.filter((r) => r.status === 200);
    assert.equal(ok.length + full.length, 12, JSON.stringify(replies.map((r) => r.status)));
    assert.ok(ok.length >= 3 && ok.length <= 4, `${ok.length} admitted: 1 running + 1 pipelined + queue_size 2`);
    assert.ok(full.every((r) => r.code === "QUEUE_FULL" && r.retryAfter !== null));
  });
});

describe("Python apps that cannot start", () => {
  test("a wrong interpreter path is a clear error at start-up", async () => {
    const r = await run(process.execPath, [
      BIN,
      "start",
      "--app",
      path.join(DEMO, "chat_app.py:app"),
      "--port",
      "0",
      "--python",
      "/no/such/python",
    ]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Python interpreter '\/no\/such\/python' was not found: give one with --python PATH/);
  });

  test("up refuses a Python app that fails to import (naming the Python error) or lacks the export (with a did-you-mean), and starts nothing", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "anyserve-py-check-"));
    try {
      writeFileSync(path.join(dir, "broken.py"), "import no_such_module_anywhere\n");
      writeFileSync(path.join(dir, "kv.py"), "class KVService:\n    def get(self, k):\n        return k\n");
      writeFileSync(
        path.join(dir, "anyserve.yaml"),
        "services:\n  broken: { app: ./broken.py:app }\n  typo: { app: kv.py:KVServce }\n  fine: { app: ./kv.py:KVService }\n",
      );
      const r = await run(process.execPath, [BIN, "up", path.join(dir, "anyserve.yaml"), "--port", "0", "--grpc-port", "0"], {
        timeout: 90_000,
      }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      assert.equal(r.code, 2, r.stderr);
      assert.doesNotMatch(r.stdout, /ANYSERVE_READY/);
      assert.match(
        r.stderr,
        /services\.broken\.app: .*broken\.py failed to load: ModuleNotFoundError: No module named 'no_such_module_anywhere'/,
      );
      assert.match(
        r.stderr,
        /services\.typo\.app: .*kv\.py has no AnyServe app or service class exported as 'KVServce'; did you mean 'KVService'\?/,
      );
      assert.doesNotMatch(r.stderr, /services\.fine/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("a Python class service under multi ×4: its 3 methods share 4 processes; set then get on 100 keys answers what was set (affinity 'key'); 'instance' keeps one count", async (t) => {
  const hooks = new Cleanups();
  t.after(() => hooks.run());
  const api = await startApiServerProc(hooks);
  const start = (spec: string, service: string) =>
    startCli(
      hooks,
      ["start", "--app", path.join(FIXTURES, "python", spec), "--port", "0", "--api-server", api.ready.url!, "--service", service].concat([
        "--threading-strategy",
        "multi",
        "--thread-count",
        "4",
      ]),
      { ANYSERVE_LOG_LEVEL: "info" },
    );
  const [kv, counter] = await Promise.all([start("kv_pids.py:KVPids", "kv"), start("kv_pids.py:Counter", "counter")]);
  const http = kv.ready.http!;
  const w = (await workersRoute(http, "GET", "/workers")).body as {
    capabilities: { capability: Record<string, string>; workers: { warm: number } }[];
    workers: { workers: { warm: number } };
  };
  assert.equal(w.workers.workers.warm, 4, "4 processes for the replica, not 4 per method");
  assert.deepEqual(
    w.capabilities.map((c) => [c.capability.method, c.workers.warm]),
    [
      ["set", 4],
      ["get", 4],
      ["where", 4],
    ],
  );
  assert.ok(
    kv.output.some((l) => l.includes("class service 'kv' (KVPids): 4 processes")),
    "the replica logs the service's model",
  );

  // No header: the replica reads the key from the call's first argument.
  const call = async (base: string, service: string, method: string, ...args: unknown[]) => {
    const reply = await infer(base, { service, method }, { args: JSON.stringify(args) });
    assert.equal(reply.status, 200, `${reply.code} ${reply.error}`);
    return (reply.value as { result: unknown }).result;
  };
  const keys = Array.from({ length: 100 }, (_, i) => `key-${i}`);
  for (const [i, k] of keys.entries()) assert.equal(await call(http, "kv", "set", k, { i }), true);
  assert.deepEqual(
    await Promise.all(keys.map((k) => call(http, "kv", "get", k))),
    keys.map((_, i) => ({ i })),
  );
  const pids = new Set(await Promise.all(keys.map((k) => call(http, "kv", "where", k))));
  assert.equal(pids.size, 4, "100 keys spread over the 4 processes");

  // affinity = "instance": every call meets one instance.
  const counts = [];
  for (let i = 0; i < 8; i++) counts.push((await call(counter.ready.http!, "counter", "add", 1)) as { n: number; pid: number });
  assert.deepEqual(
    counts.map((c) => c.n),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.equal(new Set(counts.map((c) => c.pid)).size, 1);
});

test("the Python demo's own deployment file under `anyserve up`: Python and TypeScript services call each other and pass objects", async (t) => {
  const hooks = new Cleanups();
  t.after(() => hooks.run());
  const up = await startCli(hooks, ["up", path.join(DEMO, "anyserve.yaml"), "--port", "0", "--grpc-port", "0"], {}, 120_000);
  const url = up.ready.url!;
  await waitFor("the demo's 6 services registered", async () => (await registryIds(url)).length === 6, 90_000);
  const client = new Client({ apiServer: url });
  t.after(() => client.close());
  await waitFor(
    "chat → notes (TypeScript) → embed and kv (Python) to answer",
    async () => {
      const out = (await client.infer({ type: "chat", model: "notes" }, { text: "from up" })) as {
        note: string;
        dims: number;
        kept: boolean;
      };
      assert.deepEqual(out, { note: "from up", dims: 8, kept: true });
      return true;
    },
    60_000,
    250,
  );
  const words: unknown[] = [];
  for await (const w of client.stream({ type: "stream" }, { text: "up streams too" }, { parameters: { delay_ms: 1 } })) words.push(w);
  assert.deepEqual(words, ["up", "streams", "too"]);
  assert.equal(((await client.infer({ type: "heavy" }, { ms: 1 })) as { done: string }).done, "worked 1 ms");
});
