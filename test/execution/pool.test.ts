// The 'pool' strategy passes the shared conformance suite, and grows and shrinks with load.
import { createPool } from "../../src/execution/pool.js";
import { runConformance } from "./conformance.js";
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { ExecutionStrategy } from "../../src/execution/base.js";
import { waitFor } from "../helpers/processes.js";
import { checkPoolGrowsAndShrinks, freshReplicaId, never, strategyOptions, task } from "./helpers.js";

runConformance({ name: "pool", create: createPool, options: { threads: 1, maxThreads: 2 } });

const pools: ExecutionStrategy[] = [];
after(() => Promise.all(pools.map((p) => p.stop())));

test("pool grows from thread_count toward max_thread_count while every thread is busy, and shrinks back when idle (onStop runs)", async () => {
  const replicaId = freshReplicaId("pool-grow");
  const p = createPool(await strategyOptions("do", { replicaId, threads: 1, maxThreads: 3, poolIdleMs: 300 }));
  pools.push(p);
  await p.start();
  await checkPoolGrowsAndShrinks(p, replicaId);
});

test("pool workers follow the replicas' rule: ceil(ongoing + queued / 1) within [thread_count, max], never more; only idle workers leave, after the idle delay", async () => {
  const p = createPool(
    await strategyOptions("do", { replicaId: freshReplicaId("pool-signal"), threads: 1, maxThreads: 8, poolIdleMs: 400 }),
  );
  pools.push(p);
  await p.start();
  const total = () => p.stats().workers.starting + p.stats().workers.warm;
  // 3 jobs ongoing or queued need 3 workers, not 8.
  const three = Array.from({ length: 3 }, () => p.submit(task({ op: "sleep", ms: 1_500 }), never()));
  await waitFor("3 workers for 3 jobs", () => p.stats().workers.warm === 3, 15_000);
  assert.equal(total(), 3, "no worker beyond what the load needs");
  await Promise.all(three);
  // One long job keeps one worker busy: the two idle ones leave after the idle delay, the busy one never.
  const one = p.submit(task({ op: "sleep", ms: 3_000 }), never());
  await waitFor("back to the 1 worker the job needs", () => total() === 1, 10_000);
  assert.equal(p.stats().workers.idle, 0, "the worker left is the one running the job");
  await one;
});
