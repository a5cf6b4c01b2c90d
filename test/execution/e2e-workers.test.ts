// Real processes (API server + replicas from the CLI): a worker process killed with SIGKILL
// mid-request, a busy-looping handler under `pool`, a full queue under a burst of 1000, and
// dynamic batching — each through the API server, with the flags of `anyserve start`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Pool } from "undici";
import { Cleanups, FIXTURES, registryIds, startApiServerProc, startCli, waitFor, type Proc } from "../helpers/processes.js";
import { freshReplicaId, infer, marks, workersRoute } from "./helpers.js";
import { encodeRequest } from "../../src/protocol/codec.js";
import { inputsToRequest } from "../../src/protocol/values.js";

const APP = `${FIXTURES}/exec_e2e_app.ts:app`;
const hooks = new Cleanups();
let api: string;
const reps: Record<string, Proc> = {};
const ids: Record<string, string> = {};

describe("execution across processes", () => {
  before(async () => {
    api = (await startApiServerProc(hooks)).ready.url!;
    const flags: Record<string, string[]> = {
      proc: ["--threading-strategy", "process", "--thread-count", "2", "--worker-env", "EXEC_AT"],
      pool: ["--threading-strategy", "pool", "--thread-count", "1", "--max-thread-count", "2", "--abort-grace", "0.2"],
      single: ["--threading-strategy", "single", "--queue-size", "5"],
      batch: ["--threading-strategy", "async", "--thread-count", "1", "--batch-size", "8", "--batch-wait-ms", "5"],
    };
    await Promise.all(
      Object.entries(flags).map(async ([at, extra]) => {
        ids[at] = freshReplicaId(`e2e-${at}`);
        reps[at] = await startCli(
          hooks,
          ["start", "--app", APP, "--port", "0", "--api-server", api, "--health-check-interval", "0.5", "--replica-id", ids[at]!, ...extra],
          { EXEC_AT: at },
        );
      }),
    );
    await waitFor("4 replicas registered", async () => (await registryIds(api)).length === 4);
  });
  after(() => hooks.run());

  test("process: a worker killed with SIGKILL fails only its request (502 WORKER_CRASHED); the other worker's request succeeds; a new worker serves the next", async () => {
    const http = reps.proc!.ready.http!;
    const started = await workersRoute(http, "POST", "/workers/start", { capability: { type: "do", at: "proc" } });
    assert.equal(started.status, 200);
    const victim = infer(api, { type: "do", at: "proc" }, { op: "park", ms: 60_000 }, { "x-request-id": "victim" });
    const victimPid = await waitFor(
      "the victim to park",
      () =>
        marks(ids.proc!, "parked")
          .find((l) => l.startsWith("victim "))
          ?.split(" ")[1],
    );
    const bystander = infer(api, { type: "do", at: "proc" }, { op: "park", ms: 300 }, { "x-request-id": "bystander" });
    const bystanderPid = await waitFor(
      "the bystander to park",
      () =>
        marks(ids.proc!, "parked")
          .find((l) => l.startsWith("bystander "))
          ?.split(" ")[1],
    );
    assert.notEqual(bystanderPid, victimPid, "the second request runs on the other worker process");
    process.kill(Number(victimPid), "SIGKILL");
    const v = await victim;
    assert.equal(v.status, 502);
    assert.equal(v.code, "WORKER_CRASHED");
    assert.equal((await bystander).status, 200);
    const next = await infer(api, { type: "do", at: "proc" }, { op: "echo" });
    assert.equal(next.status, 200);
    await waitFor("a replacement worker", async () => {
      const w = await workersRoute(http, "GET", "/workers");
      const lane = (w.body.capabilities as { capability: Record<string, string>; workers: { warm: number }; replaced: number }[]).find(
        (c) => c.capability.type === "do",
      );
      return lane!.replaced >= 1 && lane!.workers.warm === 2;
    });
  });

  test("a client that disconnects cancels its request: the handler in the worker process sees its abort", async () => {
    const ac = new AbortController();
    const leaving = fetch(`${api}/infer`, {
      method: "POST",
      signal: ac.signal,
      headers: { "content-type": "application/json", "x-capability-type": "do", "x-capability-at": "proc", "x-request-id": "leaver" },
      body: new Uint8Array(encodeRequest(inputsToRequest({ op: "park", ms: 60_000 }), "json").body),
    }).catch((err: unknown) => err);
    await waitFor("the request to park", () => marks(ids.proc!, "parked").some((l) => l.startsWith("leaver ")));
    ac.abort();
    await leaving;
    await waitFor("the handler to see its abort", () => marks(ids.proc!, "aborted").includes("leaver"));
  });

  test("pool: a handler that busy-loops gets 504 at its deadline; its thread is terminated and replaced; the next request succeeds", async () => {
    await workersRoute(reps.pool!.ready.http!, "POST", "/workers/start", { capability: { type: "do", at: "pool" } });
    const stuck = await infer(api, { type: "do", at: "pool" }, { op: "spin" }, { "x-anyserve-timeout-ms": "500" });
    assert.equal(stuck.status, 504);
    assert.equal(stuck.code, "DEADLINE_EXCEEDED");
    assert.ok(stuck.ms >= 450 && stuck.ms < 2_000, `answered after ${stuck.ms} ms`);
    await waitFor("the stuck thread to be replaced", async () => {
      const w = await workersRoute(reps.pool!.ready.http!, "GET", "/workers");
      return (
        (w.body.capabilities as { capability: Record<string, string>; replaced: number }[]).find((c) => c.capability.type === "do")!
          .replaced >= 1
      );
    });
    const next = await infer(api, { type: "do", at: "pool" }, { op: "echo" });
    assert.equal(next.status, 200);
  });

  test("queue full: of a burst of 1000, running + queue_size are taken, the rest get 503 QUEUE_FULL with Retry-After; nothing lost or answered twice", async () => {
    const pool = new Pool(api, { connections: 64 });
    const body = encodeRequest(inputsToRequest({ op: "gate" }), "json").body;
    const send = (i: number) =>
      pool
        .request({
          method: "POST",
          path: "/infer",
          body,
          headers: {
            "content-type": "application/json",
            "x-capability-type": "do",
            "x-capability-at": "single",
            "x-request-id": `burst-${i}`,
          },
        })
        .then(async (r) => ({
          status: r.statusCode,
          retryAfter: r.headers["retry-after"],
          body: JSON.parse(await r.body.text()) as { code?: string },
        }));
    const answered = new Array<number>(1000).fill(0);
    const all = Array.from({ length: 1000 }, (_, i) => send(i).finally(() => answered[i]!++));
    try {
      const results: { status: number; retryAfter: unknown; body: { code?: string } }[] = [];
      await waitFor("994 refusals", () => answered.filter((n) => n > 0).length >= 994, 30_000);
      const t0 = performance.now();
      const extra = await infer(api, { type: "do", at: "single" }, { op: "gate" });
      assert.equal(extra.code, "QUEUE_FULL");
      // At once: a request admitted would wait at the gate until the test opens it (never, here);
      // the bound leaves room for a loaded machine.
      assert.ok(performance.now() - t0 < 2_000, `a refusal took ${performance.now() - t0} ms end to end`);
      assert.equal((await infer(api, { type: "open", at: "single" }, { x: 1 })).status, 200);
      results.push(...(await Promise.all(all)));
      const ok = results.filter((r) => r.status === 200);
      const full = results.filter((r) => r.status === 503);
      assert.equal(ok.length, 6, "1 running + queue_size 5");
      assert.equal(full.length, 994);
      assert.ok(full.every((r) => r.body.code === "QUEUE_FULL" && r.retryAfter !== undefined));
      assert.ok(
        answered.every((n) => n === 1),
        "each request answered exactly once",
      );
    } finally {
      await infer(api, { type: "open", at: "single" }, { x: 1 }); // never leave gated requests behind
      // Every request settled before the pool goes: a destroyed pool would reject the pending ones
      // as unhandled, hiding the assertion that failed.
      await Promise.allSettled(all);
      await pool.destroy();
    }
  });

  test("batching (batch_size 8, batch_wait_ms 5): 64 concurrent requests in ≤ 10 handler calls; each caller gets its own item", async () => {
    const texts = Array.from({ length: 64 }, (_, i) => `item-${i}`);
    const replies = await Promise.all(texts.map((text) => infer(api, { type: "batch", at: "batch" }, { text })));
    const answers = replies.map((r) => r.value as { text: string; call: string; size: number });
    assert.deepEqual(
      answers.map((a) => a.text),
      texts,
    );
    const calls = new Set(answers.map((a) => a.call));
    assert.ok(calls.size <= 10, `${calls.size} handler calls for 64 requests`);
    assert.ok(answers.every((a) => a.size <= 8));
  });
});
