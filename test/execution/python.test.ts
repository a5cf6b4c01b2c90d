// Python apps run in Python worker processes under every strategy: each strategy passes the shared
// conformance suite with the Python twin of the fixture app (test/fixtures/python/exec_app.py),
// and the seed's timing check holds for Python workers (single is serial; multi, pool and async run
// side by side).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createExecution, createStrategy } from "../../src/execution/index.js";
import type { Lane } from "../../src/execution/lane.js";
import { runConformance } from "./conformance.js";
import type { ExecutionStrategy } from "../../src/execution/base.js";
import {
  answer,
  atOnce,
  checkPoolGrowsAndShrinks,
  freshReplicaId,
  never,
  PY_EXEC_APP,
  strategyOptions,
  task,
  warmLane as warm,
} from "./helpers.js";

for (const name of ["single", "async", "multi", "pool", "process"]) {
  runConformance({ name, create: (o) => createStrategy(name, o), options: { threads: 1 }, app: PY_EXEC_APP });
}

const lanes: Lane[] = [];
const strategies: ExecutionStrategy[] = [];
after(() => Promise.all([...lanes, ...strategies].map((l) => l.stop())));

const warmLane = (strategy: string, type: string, threads: number): Promise<Lane> => warm(lanes, strategy, type, threads, PY_EXEC_APP);
const fourAtOnce = (l: Lane, inputs: Record<string, unknown>) => atOnce(l, 4, inputs);

test("python single: 4 × 150 ms blocking calls run one after another (≥ 600 ms) in one process", async () => {
  const { ms, who } = await fourAtOnce(await warmLane("single", "block", 4), { ms: 150 });
  assert.ok(ms >= 600, `took ${ms} ms`);
  assert.equal(new Set([...who].map((w) => String(w).split("/")[0])).size, 1, "one process");
});

test("python async with 4: 4 × 150 ms awaited sleeps overlap in one process (≤ 450 ms)", async () => {
  const { ms } = await fourAtOnce(await warmLane("async", "sleep", 4), { ms: 150 });
  assert.ok(ms <= 450, `took ${ms} ms`);
});

test("python async with 4: plain def handlers run in threads of the process, side by side (≤ 450 ms)", async () => {
  const { ms, who } = await fourAtOnce(await warmLane("async", "block", 4), { ms: 150 });
  assert.ok(ms <= 450, `took ${ms} ms`);
  assert.equal(new Set([...who].map((w) => String(w).split("/")[0])).size, 1, "one process");
});

for (const strategy of ["multi", "pool"]) {
  test(`python ${strategy} with 4 processes: 4 × 150 ms blocking calls in parallel (≤ 450 ms), on 4 processes`, async () => {
    const { ms, who } = await fourAtOnce(await warmLane(strategy, "block", 4), { ms: 150 });
    assert.ok(ms <= 450, `took ${ms} ms`);
    assert.equal(new Set([...who].map((w) => String(w).split("/")[0])).size, 4);
  });
}

test("python pool: processes grow from thread_count toward max_thread_count while all are busy, and shrink back when idle (on_stop runs)", async () => {
  const replicaId = freshReplicaId("py-pool-grow");
  const p = createStrategy("pool", await strategyOptions("do", { replicaId, threads: 1, maxThreads: 3, poolIdleMs: 300 }, PY_EXEC_APP));
  strategies.push(p);
  await p.start();
  await checkPoolGrowsAndShrinks(p, replicaId);
});

test("python async with 4: the capabilities of one app share its process, and one capability's long calls do not hold up another's", async () => {
  const { handler: _h, onFailed: _f, ...o } = await strategyOptions("sleep", { threads: 4 }, PY_EXEC_APP);
  const execution = createExecution("async", o);
  const index = (type: string) => o.env.app.handlers.findIndex((h) => h.capability.type === type);
  const [sleep, echo] = [execution.strategy(index("sleep")), execution.strategy(index("echo"))];
  strategies.push(sleep, echo);
  await Promise.all([sleep.start(), echo.start()]);
  assert.equal(execution.stats().workers.warm, 1, "one process for both capabilities");
  const long = [1, 2].map(() => sleep.submit(task({ ms: 1_500 }), never()));
  const t0 = performance.now();
  const quick = answer(await echo.submit(task({ text: "hi" }), never())) as { text: string };
  const ms = performance.now() - t0;
  assert.equal(quick.text, "hi");
  assert.ok(ms < 1_000, `echo waited ${ms.toFixed(0)} ms behind the sleeps`);
  assert.deepEqual((await Promise.all(long)).map(answer), ["slept", "slept"]);
});
