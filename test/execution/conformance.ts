/**
 * The conformance suite every execution strategy passes (`runConformance({ name, create })`):
 * answers, errors, streams, batches, aborts, deadlines lowered by the request, lifecycle hooks,
 * start failures — and, for strategies whose workers can be killed, crashes, stuck handlers and
 * memory limits. Waits are latches (marker files, promises) polled with deadlines, never sleeps.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ExecutionStrategy, StrategyOptions } from "../../src/execution/base.js";
import { AnyServeError } from "../../src/errors.js";
import { waitFor } from "../helpers/processes.js";
import { answer, freshReplicaId, marks, never, strategyOptions, task, type FixtureApp } from "./helpers.js";

export interface ConformanceTarget {
  name: string;
  create(options: StrategyOptions): ExecutionStrategy;
  /** Extra options (sizes) for this strategy. */
  options?: Partial<StrategyOptions>;
  /** Why the worker-isolation tests (crash, stuck, memory) do not apply, if they do not. */
  noIsolation?: string;
  /** The fixture app with the suite's handlers (default: the TypeScript one). */
  app?: FixtureApp;
}

const rejectsWith = async (p: Promise<unknown>, code: string, message?: RegExp): Promise<void> => {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AnyServeError, `expected an AnyServeError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
};

export function runConformance(target: ConformanceTarget): void {
  const made: ExecutionStrategy[] = [];
  const make = async (type: string, extra: Partial<StrategyOptions> & { replicaId?: string } = {}): Promise<ExecutionStrategy> => {
    const s = target.create(await strategyOptions(type, { ...target.options, ...extra }, target.app));
    made.push(s);
    return s;
  };

  describe(`execution strategy '${target.name}' (conformance)`, () => {
    let replicaId: string;
    let s: ExecutionStrategy;
    before(async () => {
      replicaId = freshReplicaId(target.name);
      s = await make("do", { replicaId });
      await s.start();
    });
    after(() => Promise.all(made.map((m) => m.stop().catch(() => undefined))));

    test("runs the handler and encodes its answer; onStart ran in each worker first", async () => {
      const out = await s.submit(task({ op: "echo", text: "hi" }), never());
      assert.equal(out.contentType, "application/json");
      assert.equal((answer(out) as { text: string }).text, "hi");
      const started = marks(replicaId, "do.log").filter((l) => l.startsWith("start "));
      assert.equal(started.length, s.stats().workers.warm, started.join("; "));
    });

    test("stats: warm workers, nothing in flight", () => {
      const st = s.stats();
      assert.equal(st.strategy, target.name);
      assert.ok(st.workers.warm >= 1);
      assert.equal(st.workers.starting, 0);
      assert.equal(st.inFlight, 0);
      assert.ok(s.capacity >= 1);
    });

    test("a thrown Error is WORKER_ERROR with its message; an AnyServeError keeps its code", async () => {
      await rejectsWith(s.submit(task({ op: "boom" }), never()), "WORKER_ERROR", /boom from the handler/);
      await rejectsWith(s.submit(task({ op: "coded" }), never()), "INVALID_PARAMETER", /expected 1-10/);
      await rejectsWith(s.submit({ ...task({ op: "echo" }), body: Buffer.from("{not json") }, never()), "INVALID_JSON");
    });

    test("the request's timeout parameter lowers the deadline (reported through the hook) and reaches ctx.deadline", async () => {
      const t = task({ op: "deadline" }, { ms: 60_000, parameters: { timeout: 5_000_000 } });
      let lowered: number | undefined;
      const out = await s.submit(t, never(), { lowerDeadline: (_i, dl) => (lowered = dl) });
      assert.ok(lowered !== undefined && lowered < t.call.dl, "lowerDeadline was not called");
      assert.ok(Math.abs(Number(answer(out)) - lowered) < 1);
      await rejectsWith(s.submit(task({ op: "echo" }, { parameters: { timeout: -1 } }), never()), "INVALID_PARAMETER");
    });

    test("abort fires the handler's AbortSignal", async () => {
      const ac = new AbortController();
      const t = task({ op: "sleep", ms: 30_000 });
      const p = s.submit(t, ac.signal);
      // Aborted once it runs (a job still queued is dropped before any handler could see it).
      await waitFor("the handler to run", () => marks(replicaId, "running").includes(t.call.rid));
      ac.abort(new AnyServeError("DEADLINE_EXCEEDED", "test deadline"));
      await assert.rejects(p);
      await waitFor("the handler to see its abort", () => marks(replicaId, "aborted").includes(t.call.rid));
    });

    test("streams: chunks arrive in order, then the end", async () => {
      const st = await make("tokens");
      await st.start();
      const chunks: unknown[] = [];
      await st.stream(task({ n: 4 }), never(), (c) => void chunks.push(answer(c)));
      assert.deepEqual(chunks, ["t0", "t1", "t2", "t3"]);
    });

    test("batches: one call, answers per item; an Error in a slot or an undecodable body fails only its item", async () => {
      const b = await make("batch");
      await b.start();
      const tasks = [
        task({ text: "a" }, { parameters: { ms: 1 } }),
        task({ text: "bad" }),
        { ...task({ text: "c" }), body: Buffer.from("[") },
        task({ text: "d" }),
      ];
      const outs = await b.submitBatch(tasks, tasks.map(never));
      assert.equal(outs.length, 4);
      const a = outs[0]!.ok ? (answer(outs[0]!.value) as { text: string; call: string; size: number }) : undefined;
      const d = outs[3]!.ok ? (answer(outs[3]!.value) as { text: string; call: string; size: number }) : undefined;
      assert.equal(a?.text, "a");
      assert.equal(d?.text, "d");
      assert.equal(a?.call, d?.call, "one handler call for the batch");
      assert.equal(a?.size, 3, "the undecodable item never reaches the handler");
      assert.deepEqual(outs[1], { ok: false, error: { code: "WORKER_ERROR", message: "bad item" } });
      assert.equal(!outs[2]!.ok && outs[2]!.error.code, "INVALID_JSON");
    });

    test("start failure: retried startRetries times, then CAPABILITY_FAILED with the reason", async () => {
      const id = freshReplicaId(`${target.name}-bad`);
      const bad = await make("badstart", { replicaId: id, startRetries: 2 });
      await rejectsWith(bad.start(), "CAPABILITY_FAILED", /model file missing/);
      assert.equal(marks(id, "badstart.log").length, 2);
    });

    test("stop runs onStop in each worker", async () => {
      const id = freshReplicaId(`${target.name}-stop`);
      const one = await make("echo", { replicaId: id });
      await one.start();
      const warm = one.stats().workers.warm;
      await one.stop();
      assert.equal(marks(id, "echo.log").filter((l) => l.startsWith("stop ")).length, warm);
      await rejectsWith(one.submit(task({ text: "late" }), never()), "SHUTTING_DOWN");
    });

    describe("worker isolation", { skip: target.noIsolation }, () => {
      test("a worker that exits mid-request fails only that request (502 WORKER_CRASHED) and is replaced; a request queued behind it runs elsewhere", async () => {
        const crashed = s.submit(task({ op: "exit" }), never());
        const other = s.submit(task({ op: "echo", text: "still here" }), never());
        await rejectsWith(crashed, "WORKER_CRASHED");
        assert.equal((answer(await other) as { text: string }).text, "still here");
        assert.ok(s.stats().replaced >= 1);
        const next = await s.submit(task({ op: "echo", text: "next" }), never());
        assert.equal((answer(next) as { text: string }).text, "next");
      });

      test("a handler that ignores its abort is terminated after the grace period; the next request succeeds", async () => {
        const before = s.stats().replaced;
        const ac = new AbortController();
        const t = task({ op: "spin" });
        const stuck = s.submit(t, ac.signal);
        // Aborted once it runs: a job still queued is dropped without a stuck worker to replace.
        await waitFor("the spin to run", () => marks(replicaId, "spinning").includes(t.call.rid));
        ac.abort(new AnyServeError("DEADLINE_EXCEEDED", "test deadline"));
        await rejectsWith(stuck, "DEADLINE_EXCEEDED");
        await waitFor("the stuck worker to be replaced", () => s.stats().replaced > before);
        const next = await s.submit(task({ op: "echo", text: "after spin" }), never());
        assert.equal((answer(next) as { text: string }).text, "after spin");
      });

      test("over memory_mb: WORKER_OUT_OF_MEMORY, the worker is replaced", async () => {
        const small = await make("do", { memoryMb: 96 });
        await small.start();
        await rejectsWith(small.submit(task({ op: "hog" }), never()), "WORKER_OUT_OF_MEMORY");
        const next = await small.submit(task({ op: "echo", text: "ok" }), never());
        assert.equal((answer(next) as { text: string }).text, "ok");
      });
    });
  });
}
