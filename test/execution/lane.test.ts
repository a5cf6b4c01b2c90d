// Lanes: the bounded queue (503 at once, nothing lost or answered twice), leaving the queue on
// abort, dynamic batching, lazy start/idle stop with hooks, and start failures.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { StrategyOptions } from "../../src/execution/base.js";
import { createExecution } from "../../src/execution/index.js";
import { Lane, type LaneOptions } from "../../src/execution/lane.js";
import { AnyServeError } from "../../src/errors.js";
import { waitFor } from "../helpers/processes.js";
import { answer, freshReplicaId, logger, marks, never, strategyOptions, task } from "./helpers.js";

const lanes: Lane[] = [];
after(() => Promise.all(lanes.map((l) => l.stop().catch(() => undefined))));

async function lane(
  type: string,
  o: Partial<LaneOptions> & { strategy?: string; replicaId?: string; so?: Partial<StrategyOptions> } = {},
): Promise<Lane> {
  const {
    env,
    handler,
    onFailed: _f,
    ...strategyRest
  } = await strategyOptions(type, { ...o.so, ...(o.replicaId ? { replicaId: o.replicaId } : {}) });
  const { strategy = "single", so: _so, replicaId: _r, ...laneOptions } = o;
  const l = new Lane({
    entry: env.app.handlers[handler]!,
    handler,
    execution: createExecution(strategy, { env, ...strategyRest }),
    queueSize: 1000,
    batchSize: 1,
    batchWaitMs: 5,
    idleTimeoutMs: 300_000,
    logger,
    onState: () => undefined,
    ...laneOptions,
  });
  lanes.push(l);
  return l;
}

const code = (err: unknown): string => (err instanceof AnyServeError ? err.code : String(err));

test("queue full: 503 QUEUE_FULL at once; of a burst of 1000, exactly running + queue_size are taken, each settles once", async (t) => {
  const l = await lane("do", { queueSize: 5 });
  await l.start();
  const ac = new AbortController();
  t.after(() => ac.abort(new AnyServeError("CANCELLED", "test over")));
  const settled = new Array<number>(1000).fill(0);
  const tasks = Array.from({ length: 1000 }, () => task({ op: "sleep", ms: 60_000 }));
  const started = performance.now();
  const outcomes = tasks.map((tk, i) =>
    l
      .run(tk, ac.signal)
      .then(() => "ok", code)
      .finally(() => settled[i]!++),
  );
  const rejected = await Promise.all(outcomes.slice(6));
  assert.ok(performance.now() - started < 500, `994 refusals took ${performance.now() - started} ms`);
  assert.deepEqual(new Set(rejected), new Set(["QUEUE_FULL"]));
  const extra = task({ op: "echo" });
  const t0 = performance.now();
  assert.equal(await l.run(extra, never()).then(() => "ok", code), "QUEUE_FULL");
  assert.ok(performance.now() - t0 < 50, "a full queue answers within 50 ms");
  assert.deepEqual(l.stats().queued, 5);
  ac.abort(new AnyServeError("CANCELLED", "test over"));
  const first = await Promise.all(outcomes.slice(0, 6));
  assert.deepEqual(first, Array(6).fill("CANCELLED"));
  assert.ok(
    settled.every((n) => n === 1),
    "every request settled exactly once",
  );
});

test("an aborted request leaves the queue and frees its place", async (t) => {
  const l = await lane("do", { queueSize: 1 });
  await l.start();
  const hold = new AbortController();
  t.after(() => hold.abort(new AnyServeError("CANCELLED", "test over")));
  const running = l.run(task({ op: "sleep", ms: 60_000 }), hold.signal).catch(code);
  const leaving = new AbortController();
  const queued = l.run(task({ op: "echo", text: "never runs" }), leaving.signal).catch(code);
  assert.equal(await l.run(task({ op: "echo" }), never()).catch(code), "QUEUE_FULL");
  leaving.abort(new AnyServeError("DEADLINE_EXCEEDED", "expired in the queue"));
  assert.equal(await queued, "DEADLINE_EXCEEDED");
  assert.equal(l.stats().queued, 0);
  const next = l.run(task({ op: "echo", text: "fits now" }), never());
  hold.abort(new AnyServeError("CANCELLED", "done"));
  await running;
  assert.equal((answer(await next) as { text: string }).text, "fits now");
});

test("batching (batch_size 8, batch_wait_ms 5): 64 concurrent requests in ≤ 10 handler calls, each caller gets its own answer", async () => {
  const l = await lane("batch", { strategy: "async", so: { threads: 1 }, batchSize: 8, batchWaitMs: 5 });
  await l.start();
  const texts = Array.from({ length: 64 }, (_, i) => `item-${i}`);
  const outs = await Promise.all(texts.map((text) => l.run(task({ text }, { parameters: { ms: 20 } }), never())));
  const answers = outs.map((o) => answer(o) as { text: string; call: string; size: number });
  assert.deepEqual(
    answers.map((a) => a.text),
    texts,
  );
  const calls = new Set(answers.map((a) => a.call));
  assert.ok(calls.size <= 10, `${calls.size} handler calls`);
  assert.ok(
    answers.every((a) => a.size <= 8),
    "no batch exceeds batch_size",
  );
});

test("a batch never waits longer than batch_wait_ms after its first item", async () => {
  const l = await lane("batch", { strategy: "async", so: { threads: 1 }, batchSize: 8, batchWaitMs: 40 });
  await l.start();
  const t0 = performance.now();
  const out = answer(await l.run(task({ text: "alone" }, { parameters: { ms: 1 } }), never())) as { size: number };
  const took = performance.now() - t0;
  assert.equal(out.size, 1);
  assert.ok(took >= 38 && took < 40 + 150, `a lone request took ${took} ms`);
});

test("a batch handler with batch_size 1 still gets an array of one (the lane's fast path is for plain handlers only)", async () => {
  const l = await lane("batch", { strategy: "async", so: { threads: 2 }, batchSize: 1 });
  await l.start();
  const outs = await Promise.all(["a", "b"].map((text) => l.run(task({ text }, { parameters: { ms: 1 } }), never())));
  assert.deepEqual(
    outs.map((o) => answer(o) as { text: string; size: number }),
    [
      { text: "a", call: (answer(outs[0]!) as { call: string }).call, size: 1 },
      { text: "b", call: (answer(outs[1]!) as { call: string }).call, size: 1 },
    ],
  );
});

test("lazy: cold until the first request, warm while used, cold again after idle_timeout with onStop run", async () => {
  const replicaId = freshReplicaId("lane-lazy");
  const states: string[] = [];
  const l: Lane = await lane("lazy", { strategy: "multi", replicaId, idleTimeoutMs: 300, onState: () => states.push(l.registryState) });
  assert.equal(l.state, "cold");
  const out = answer(await l.run(task({ x: 1 }), never())) as { text: string };
  assert.equal(out.text, "lazy answer");
  assert.deepEqual(marks(replicaId, "lazy.log"), ["start thread-1"]);
  await waitFor("idle stop", () => l.state === "cold", 10_000);
  assert.deepEqual(marks(replicaId, "lazy.log"), ["start thread-1", "stop thread-1"]);
  assert.deepEqual(states, ["warm", "cold"]);
});

test("start failure: capped retries, then failed with the reason; requests get 503 CAPABILITY_FAILED", async () => {
  const replicaId = freshReplicaId("lane-bad");
  const l = await lane("badstart", { strategy: "async", replicaId, so: { startRetries: 2 } });
  const err = await l.run(task({ x: 1 }), never()).catch((e: unknown) => e);
  assert.equal(code(err), "CAPABILITY_FAILED");
  assert.match((err as Error).message, /model file missing/);
  assert.equal(l.registryState, "failed");
  assert.equal(marks(replicaId, "badstart.log").length, 2);
  assert.equal(await l.run(task({ x: 1 }), never()).catch(code), "CAPABILITY_FAILED");
  assert.match(String(l.stats().reason), /model file missing/);
});
