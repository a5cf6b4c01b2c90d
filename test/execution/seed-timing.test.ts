// The seed's own check (issue #4): 8 concurrent calls to a handler that blocks its thread for
// 100 ms take ≥ 700 ms under `single` and ≤ 400 ms under `pool` and `multi` with 8 threads;
// `async` with 8 overlaps 8 awaited 100 ms sleeps in ≤ 400 ms. Timed after the workers are warm.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { Lane } from "../../src/execution/lane.js";
import { atOnce, warmLane as warm } from "./helpers.js";

const lanes: Lane[] = [];
after(() => Promise.all(lanes.map((l) => l.stop())));

const warmLane = (strategy: string, type: string, threads: number): Promise<Lane> => warm(lanes, strategy, type, threads);
const eightAtOnce = (l: Lane, inputs: Record<string, unknown>) => atOnce(l, 8, inputs);

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
