// A replica's capabilities share its workers (issue 24 #2): in-process replicas with real worker
// threads, reached over their real REST port. A plain app's three capabilities run on the
// replica's thread_count threads (before: thread_count per capability), each keeping its own
// queue limit, lazy start, idle stop and hooks; a class service's `static affinity` decides which
// thread's instance a call meets, and the replica says so once in its log.
import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import { Environment } from "../../src/deploy/environment.js";
import { startReplica, type RunningReplica } from "../../src/replica/replica.js";
import { loadApp } from "../../src/sdk/load-app.js";
import type { Logger } from "../../src/util/log.js";
import { waitFor } from "../helpers/processes.js";
import { FIXTURES } from "../helpers/processes.js";
import { Prefixed } from "../fixtures/class_services.js";
import { freshReplicaId, infer, marks, workersRoute } from "./helpers.js";

const running: RunningReplica[] = [];
after(() => Promise.all(running.map((r) => r.stop())));

interface WorkersBody {
  capabilities: { capability: Record<string, string>; state: string; workers: { warm: number; starting: number }; queued: number }[];
  workers: { strategy: string; workers: { warm: number; starting: number; idle: number }; threads: number; replaced: number };
}

/** A replica of `spec` in this process, with worker threads as its config says. */
async function replica(
  spec: string,
  deployment: Record<string, unknown>,
  o: { replicaId?: string; performance?: Record<string, unknown>; logger?: Logger; service?: string } = {},
): Promise<RunningReplica> {
  const r = await startReplica({
    app: await loadApp(spec, o.service ? { service: o.service } : {}),
    appSpec: spec,
    replicaId: o.replicaId ?? freshReplicaId("shared"),
    httpPort: 0,
    port: 0,
    config: { app: spec, deployment, ...(o.performance ? { performance: o.performance } : {}) },
    ...(o.logger ? { logger: o.logger } : {}),
  });
  running.push(r);
  return r;
}

async function workers(r: RunningReplica): Promise<WorkersBody> {
  return (await workersRoute(r.httpUrl, "GET", "/workers")).body as unknown as WorkersBody;
}

/** Calls a class service's method on the replica itself (no API server: the key comes from the body alone). */
async function method(r: RunningReplica, service: string, name: string, ...args: unknown[]): Promise<unknown> {
  const reply = await infer(r.httpUrl, { service, method: name }, { args: JSON.stringify(args) });
  assert.equal(reply.status, 200, `${name}(${JSON.stringify(args)}): ${reply.code} ${reply.error}`);
  return (reply.value as { result: unknown }).result;
}

test("a plain app's 3 capabilities under multi ×2 run on 2 threads (not 6), each with its own queue limit; a lazy one starts and stops on them", async () => {
  const replicaId = freshReplicaId("plain");
  const r = await replica(
    `${path.join(FIXTURES, "shared_app.ts")}:app`,
    { threading_strategy: "multi", thread_count: 2, idle_timeout: 0.4 },
    { replicaId, performance: { queue_size: 1 } },
  );
  let w = await workers(r);
  assert.deepEqual([w.workers.strategy, w.workers.threads, w.workers.workers.warm], ["multi", 2, 2], JSON.stringify(w.workers));
  const byType = (b: WorkersBody, type: string) => b.capabilities.find((c) => c.capability.type === type)!;
  assert.deepEqual(
    ["slow", "quick", "late"].map((t) => [byType(w, t).state, byType(w, t).workers.warm]),
    [
      ["warm", 2],
      ["warm", 2],
      ["cold", 0],
    ],
    "the eager capabilities are on the same 2 threads; the lazy one is not started",
  );
  assert.deepEqual(marks(replicaId, "quick.log").sort(), ["start thread-1", "start thread-2"]);

  // The same two threads answer every capability.
  const threads = new Set((await Promise.all([1, 2].map(() => infer(r.httpUrl, { type: "slow" }, { ms: 300 })))).map((x) => x.value));
  assert.equal(threads.size, 2, `threads seen: ${[...threads].join(", ")}`);
  for (let i = 0; i < 5; i++) assert.ok(threads.has((await infer(r.httpUrl, { type: "quick" }, {})).value));

  // slow's queue fills (2 threads × 2 pipelined + queue_size 1 = 5 places) while quick still answers.
  const parked = Array.from({ length: 5 }, () => infer(r.httpUrl, { type: "slow" }, { ms: 1_500 }));
  await waitFor("slow's places taken", async () => byType(await workers(r), "slow").queued >= 1);
  const refused = await infer(r.httpUrl, { type: "slow" }, { ms: 1 });
  assert.deepEqual([refused.status, refused.code], [503, "QUEUE_FULL"]);
  // quick's jobs never queue inside a thread behind slow's: they wait here for a free thread, within their own limit.
  assert.equal((await Promise.all(parked)).filter((p) => p.status === 200).length, 5);
  assert.equal((await infer(r.httpUrl, { type: "quick" }, {})).status, 200);

  // The lazy capability starts on its first call, on the same threads, and stops after idle_timeout (onStop in each); the threads stay.
  assert.equal((await infer(r.httpUrl, { type: "late" }, {})).status, 200);
  w = await workers(r);
  assert.deepEqual([byType(w, "late").state, byType(w, "late").workers.warm, w.workers.workers.warm], ["warm", 2, 2]);
  await waitFor("late to stop after idle_timeout", async () => byType(await workers(r), "late").state === "cold", 10_000);
  await waitFor("onStop of late in both threads", () => marks(replicaId, "late.log").filter((l) => l.startsWith("stop")).length === 2);
  assert.deepEqual(marks(replicaId, "late.log").sort(), ["start thread-1", "start thread-2", "stop thread-1", "stop thread-2"]);
  w = await workers(r);
  assert.equal(w.workers.workers.warm, 2, "the other capabilities keep their threads");
  assert.equal((await infer(r.httpUrl, { type: "quick" }, {})).status, 200);

  // A thread that dies is replaced, and its replacement starts every started capability (onStart) before it serves.
  const crashed = await infer(r.httpUrl, { type: "crash" }, {});
  assert.deepEqual([crashed.status, crashed.code], [502, "WORKER_CRASHED"]);
  await waitFor(
    "the replacement thread",
    async () => (await workers(r)).workers.workers.warm === 2 && (await workers(r)).workers.replaced === 1,
  );
  await waitFor("onStart of quick in the new thread", () => marks(replicaId, "quick.log").includes("start thread-3"));
  assert.ok(!marks(replicaId, "late.log").includes("start thread-3"), "a stopped capability does not start in it");
  assert.equal((await infer(r.httpUrl, { type: "quick" }, {})).status, 200);

  // Stopping every capability stops the threads.
  for (const type of ["slow", "quick", "crash"]) await workersRoute(r.httpUrl, "POST", "/workers/stop", { capability: { type } });
  w = await workers(r);
  assert.deepEqual([w.workers.workers.warm, w.workers.workers.starting], [0, 0]);
  assert.deepEqual(
    marks(replicaId, "quick.log")
      .filter((l) => l.startsWith("stop"))
      .sort(),
    ["stop thread-2", "stop thread-3"],
  );
});

test("class services under multi ×3: affinity 'key' keeps a key on one thread, 'instance' puts every call on one, 'none' spreads them; the replica logs which", async () => {
  const lines: { level: string; msg: string }[] = [];
  const logger = recordingLogger(lines);
  const kv = await replica(
    `${path.join(FIXTURES, "seed", "services.ts")}:KVService`,
    { threading_strategy: "multi", thread_count: 3 },
    {
      service: "kv",
      logger,
    },
  );
  // set then get of 60 keys, without any header: the replica reads the key from the body.
  for (let i = 0; i < 60; i++) assert.equal(await method(kv, "kv", "set", `key-${i}`, i), true);
  for (let i = 0; i < 60; i++) assert.equal(await method(kv, "kv", "get", `key-${i}`), i, `get(key-${i})`);
  const w = await workers(kv);
  assert.equal(w.workers.workers.warm, 3, "3 threads for the 3 methods together");
  assert.ok(
    lines.some(
      (l) =>
        l.level === "info" && /class service 'kv' \(KVService\): 3 threads \(multi\) with one instance each.*first argument/.test(l.msg),
    ),
    lines.map((l) => l.msg).join("\n"),
  );

  const counter = await replica(
    `${path.join(FIXTURES, "class_services.ts")}:Counter`,
    { threading_strategy: "multi", thread_count: 3 },
    {
      service: "counter",
    },
  );
  const counts = [];
  for (let i = 1; i <= 12; i++) counts.push((await method(counter, "counter", "increment", i)) as { n: number; thread: number });
  assert.deepEqual(
    counts.map((c) => c.n),
    counts.map((_, i) => ((i + 1) * (i + 2)) / 2),
    "one instance counted every call",
  );
  assert.equal(new Set(counts.map((c) => c.thread)).size, 1);

  const spread = await replica(
    `${path.join(FIXTURES, "class_services.ts")}:Stateless`,
    { threading_strategy: "multi", thread_count: 3 },
    {
      service: "stateless",
    },
  );
  // Nine calls at once, all with the same first argument: with no affinity they use every thread.
  const threads = await Promise.all(Array.from({ length: 9 }, () => method(spread, "stateless", "where", "same", 200)));
  assert.equal(new Set(threads).size, 3, `threads: ${threads.join(", ")}`);

  await assert.rejects(
    loadApp(`${path.join(FIXTURES, "class_services.ts")}:Misdeclared`),
    /static affinity must be one of key, instance, none, got "sticky"/,
  );
});

test("process workers build a class service with the replica's name and constructor arguments", async () => {
  const env = new Environment();
  env.registerServiceWithConfig(
    "prefixed",
    Prefixed as never,
    { app: `${path.join(FIXTURES, "class_services.ts")}:Prefixed`, deployment: { threading_strategy: "process", thread_count: 2 } },
    "p:",
  );
  await env.start();
  try {
    const svc = env.callService("prefixed");
    const where = (await Promise.all(["a", "b", "c", "d", "e", "f"].map((k) => svc.put!(k, k.toUpperCase())))) as {
      pid: number;
      service: string;
    }[];
    assert.ok(
      where.every((w) => w.pid !== process.pid && w.service === "prefixed"),
      JSON.stringify(where),
    );
    assert.deepEqual(await Promise.all(["a", "b", "c", "d", "e", "f"].map((k) => svc.take!(k))), [
      "p:A",
      "p:B",
      "p:C",
      "p:D",
      "p:E",
      "p:F",
    ]);
  } finally {
    await env.stop();
  }
});

test("the log warns when a class service's replicas are not balanced by key", async () => {
  const lines: { level: string; msg: string }[] = [];
  const r = await replica(
    `${path.join(FIXTURES, "seed", "services.ts")}:KVService`,
    { threading_strategy: "async", replicas: 2, load_balancing: true },
    { service: "kv2", logger: recordingLogger(lines) },
  );
  assert.equal(await method(r, "kv2", "set", "a", 1), true);
  const warning = lines.find((l) => l.level === "warn");
  assert.match(warning?.msg ?? "", /its 2 replicas are balanced by power_of_two.*set deployment.load_balancing: consistent_hash/);
  assert.ok(lines.some((l) => /one instance on the replica's event loop/.test(l.msg)));
});

function recordingLogger(lines: { level: string; msg: string }[]): Logger {
  const at =
    (level: string) =>
    (a: object | string, b?: string): void => {
      lines.push({ level, msg: typeof a === "string" ? a : (b ?? "") });
    };
  const logger: Logger = {
    level: "trace",
    fatal: at("fatal"),
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    trace: at("trace"),
    child: () => logger,
  };
  return logger;
}
