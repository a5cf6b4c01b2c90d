// The seed's own check (issue #4): 8 concurrent calls to a handler that blocks its thread for
// 100 ms take ≥ 700 ms under `single` and ≤ 400 ms under `pool` and `multi` with 8 threads;
// `async` with 8 overlaps 8 awaited 100 ms sleeps in ≤ 400 ms. Timed after the workers are warm.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createExecution } from "../../src/execution/index.js";
import { Lane } from "../../src/execution/lane.js";
import { answer, logger, never, strategyOptions, task } from "./helpers.js";

const lanes: Lane[] = [];
after(() => Promise.all(lanes.map((l) => l.stop())));

async function warmLane(strategy: string, type: string, threads: number): Promise<Lane> {
  const { env, handler, onFailed: _f, ...rest } = await strategyOptions(type, { threads, maxThreads: threads });
  const l = new Lane({
    entry: env.app.handlers[handler]!,
    handler,
    execution: createExecution(strategy, { env, ...rest }),
    queueSize: 1000,
    batchSize: 1,
    batchWaitMs: 5,
    idleTimeoutMs: 300_000,
    logger,
    onState: () => undefined,
  });
  lanes.push(l);
  await l.start();
  return l;
}

async function eightAtOnce(l: Lane, inputs: Record<string, unknown>): Promise<{ ms: number; who: Set<unknown> }> {
  const t0 = performance.now();
  const outs = await Promise.all(Array.from({ length: 8 }, () => l.run(task(inputs), never())));
  return { ms: performance.now() - t0, who: new Set(outs.map(answer)) };
}

test("single: 8 × 100 ms blocking calls run one after another (≥ 700 ms)", async () => {
  const { ms } = await eightAtOnce(await warmLane("single", "block", 1), { ms: 100 });
  assert.ok(ms >= 700, `took ${ms} ms`);
});

test("async with 8: 8 × 100 ms awaited sleeps overlap (≤ 400 ms)", async () => {
  const { ms } = await eightAtOnce(await warmLane("async", "sleep", 8), { ms: 100 });
  assert.ok(ms <= 400, `took ${ms} ms`);
});

test("multi with 8 threads: 8 × 100 ms blocking calls in parallel (≤ 400 ms), on 8 threads", async () => {
  const { ms, who } = await eightAtOnce(await warmLane("multi", "block", 8), { ms: 100 });
  assert.ok(ms <= 400, `took ${ms} ms`);
  assert.equal(who.size, 8);
});

test("pool with 8 threads: 8 × 100 ms blocking calls in parallel (≤ 400 ms), on 8 threads", async () => {
  const { ms, who } = await eightAtOnce(await warmLane("pool", "block", 8), { ms: 100 });
  assert.ok(ms <= 400, `took ${ms} ms`);
  assert.equal(who.size, 8);
});
