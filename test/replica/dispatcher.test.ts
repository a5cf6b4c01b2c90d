// The replica's dispatcher on its own, with handlers on the event loop (no sockets, no workers):
// handler lookup, the errors for calls nothing serves, queue admission, deadlines and cancellation
// reaching the handler's signal, draining, and the states and health it reports.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AnyServeError } from "../../src/errors.js";
import { decodeResponse, encodeRequest } from "../../src/protocol/codec.js";
import type { EncodedBody } from "../../src/protocol/types.js";
import { inputsToRequest, responseToValue } from "../../src/protocol/values.js";
import { resolveService } from "../../src/config/resolve.js";
import type { ExecutionConfig } from "../../src/execution/config.js";
import { executionOf } from "../../src/replica/service-config.js";
import { Dispatcher, type DispatcherOptions } from "../../src/replica/dispatcher.js";
import { AnyServe } from "../../src/sdk/app.js";
import { silentLogger } from "../../src/util/logger.js";
import { waitFor } from "../helpers/processes.js";
import { deferred } from "../transport/helpers.js";

type Call = Parameters<Dispatcher["infer"]>[0];

let rid = 0;
/** A call as a front end hands it over: `inputs` as an OIP JSON body, due in `timeoutMs`. */
function call(
  query: Record<string, string>,
  o: { timeoutMs?: number; signal?: AbortSignal; model?: { name: string; version?: string }; inputs?: Record<string, unknown> } = {},
): Call {
  const { body, contentType } = encodeRequest(inputsToRequest(o.inputs ?? { x: 1 }), "json");
  return {
    query,
    body,
    contentType,
    format: "json",
    timeoutMs: o.timeoutMs ?? 10_000,
    requestId: `r${++rid}`,
    signal: o.signal ?? new AbortController().signal,
    ...(o.model ? { model: o.model } : {}),
  };
}

function value(out: EncodedBody): unknown {
  return responseToValue(decodeResponse(out.body, { contentType: out.contentType }));
}

/** Execution settings as a service config resolves them for `strategy`, with `o` on top. */
function execution(o: Partial<ExecutionConfig> & { strategy: string }): ExecutionConfig {
  const cfg = resolveService({ app: "test", deployment: { threading_strategy: o.strategy as never } });
  return { ...executionOf(cfg), ...o };
}

function dispatcher(app: AnyServe, o: Partial<DispatcherOptions> = {}): Dispatcher {
  return new Dispatcher({
    app,
    replicaId: "r1",
    logger: silentLogger,
    maxTimeoutMs: 60_000,
    execution: execution({ strategy: "async" }),
    ...o,
  });
}

/** A handler that holds every call until `release()`; `started` counts the calls it began. */
function holdingHandler() {
  let gate = deferred();
  const h = {
    started: 0,
    release() {
      gate.resolve();
      gate = deferred();
    },
    fn: async () => {
      h.started++;
      await gate.promise;
      return "released";
    },
  };
  return h;
}

/** Polls `check` every 2 ms until it holds (5 s at most). */
const until = (what: string, check: () => boolean) => waitFor(what, check, 5_000, 2);

test("the first registered handler that matches the query answers", async () => {
  const app = new AnyServe();
  app.capability({ type: "echo", model: "a" }, () => "a");
  app.capability({ type: "echo" }, () => "plain");
  app.capability({ type: "echo", model: "b" }, () => "b");
  const d = dispatcher(app);
  await d.start();
  assert.equal(value(await d.infer(call({ type: "echo" }))), "a", "{type: echo} matches all three: the first wins");
  assert.equal(value(await d.infer(call({ type: "echo", model: "b" }))), "b", "only the third has model=b");
  assert.equal(value(await d.infer(call({ model: "a" }))), "a");
  await d.stop();
});

test("nothing matches: NO_MATCHING_CAPABILITY listing what is served; a model route gets MODEL_NOT_FOUND; a streaming handler called plainly gets NOT_STREAMING", async () => {
  const app = new AnyServe();
  app.capability({ type: "echo" }, () => "x");
  app.capability({ type: "tokens" }, async function* () {
    yield "t";
  });
  const d = dispatcher(app);
  await d.start();
  await assert.rejects(d.infer(call({ type: "chat" })), (err: AnyServeError) => {
    assert.equal(err.code, "NO_MATCHING_CAPABILITY");
    assert.match(err.message, /replica 'r1' has no handler for \{type=chat\}; it serves \{type=echo\}, \{type=tokens\}/);
    return true;
  });
  await assert.rejects(d.infer(call({ model: "m" }, { model: { name: "m", version: "2" } })), (err: AnyServeError) => {
    assert.equal(err.code, "MODEL_NOT_FOUND");
    assert.match(err.message, /model 'm' version '2' is not served here/);
    return true;
  });
  await assert.rejects(d.infer(call({ type: "tokens" })), { code: "NOT_STREAMING" });
  await assert.rejects(d.modelMetadata({ model: "m" }, "m"), { code: "MODEL_NOT_FOUND" });
  assert.equal(await d.modelReady({ type: "nope" }), false);
  assert.equal(await d.modelReady({ type: "echo" }), true);
  assert.equal(d.inFlight, 0, "refused calls are not counted in flight");
  await d.stop();
});

test("admission: past the running calls and queue_size, QUEUE_FULL at once (503, retryable, naming the queue); room again once they finish", async () => {
  const app = new AnyServe();
  const h = holdingHandler();
  app.capability({ type: "held" }, h.fn);
  // `single`: one call at a time; queue_size 2 more may wait.
  const d = dispatcher(app, { execution: execution({ strategy: "single", queueSize: 2 }) });
  await d.start();
  const first = d.infer(call({ type: "held" }));
  await until("the first call running", () => h.started === 1);
  const queued = [d.infer(call({ type: "held" })), d.infer(call({ type: "held" }))];
  assert.deepEqual([d.health().load.in_flight, d.health().load.queue_depth], [1, 2]);
  const started = Date.now();
  await assert.rejects(d.infer(call({ type: "held" })), (err: AnyServeError) => {
    assert.equal(err.code, "QUEUE_FULL");
    assert.equal(err.httpStatus, 503);
    assert.equal(err.retryable, true, "callers may retry: the REST answer carries Retry-After");
    assert.match(err.message, /the queue of \{type=held\} is full \(1 running, 2 waiting, queue_size 2\)/);
    return true;
  });
  assert.ok(Date.now() - started < 1_000, "refused at once, not after a wait");
  assert.equal(d.inFlight, 3, "the refused call is not counted");
  // One at a time: each release lets the running call finish and the next queued one start.
  for (const n of [2, 3]) {
    h.release();
    await until(`queued call ${n} running`, () => h.started === n);
  }
  h.release();
  assert.deepEqual((await Promise.all([first, ...queued])).map(value), ["released", "released", "released"]);
  const again = d.infer(call({ type: "held" }));
  await until("a fourth call admitted", () => h.started === 4);
  h.release();
  assert.equal(value(await again), "released");
  assert.equal(d.inFlight, 0);
  await d.stop();
});

test("deadline: DEADLINE_EXCEEDED when the call's time (capped by the service's timeout) runs out, and the handler's signal fires", async () => {
  const app = new AnyServe();
  const aborts: string[] = [];
  app.capability({ type: "wait" }, (req, ctx) => {
    const id = String(req.value("id"));
    return new Promise((resolve) => {
      ctx.signal.addEventListener("abort", () => {
        aborts.push(id);
        resolve("aborted");
      });
    });
  });
  const d = dispatcher(app, { maxTimeoutMs: 100 });
  await d.start();
  const t0 = Date.now();
  await assert.rejects(d.infer(call({ type: "wait" }, { timeoutMs: 50, inputs: { id: "own" } })), { code: "DEADLINE_EXCEEDED" });
  await assert.rejects(d.infer(call({ type: "wait" }, { timeoutMs: 60_000, inputs: { id: "capped" } })), { code: "DEADLINE_EXCEEDED" });
  assert.ok(Date.now() - t0 < 5_000, "the 60 s asked for was capped at the service's 100 ms");
  await until("both handlers aborted", () => aborts.length === 2);
  assert.deepEqual(aborts.sort(), ["capped", "own"]);
  // The caller leaving is CANCELLED, and fires the handler's signal too.
  const ctl = new AbortController();
  const leaving = d.infer(call({ type: "wait" }, { signal: ctl.signal, inputs: { id: "left" } }));
  ctl.abort();
  await assert.rejects(leaving, { code: "CANCELLED" });
  await until("the third handler aborted", () => aborts.includes("left"));
  assert.equal(d.inFlight, 0);
  await d.stop();
});

test("drain: refuses new calls with SHUTTING_DOWN, reports not ready, and resolves once the calls in flight have finished", async () => {
  const app = new AnyServe();
  const h = holdingHandler();
  app.capability({ type: "held" }, h.fn);
  const d = dispatcher(app);
  await d.start();
  assert.equal(d.ready(), true);
  const running = [d.infer(call({ type: "held" })), d.infer(call({ type: "held" }))];
  await until("both calls running", () => h.started === 2);
  let drained = false;
  const draining = d.drain().then(() => {
    drained = true;
  });
  await assert.rejects(d.infer(call({ type: "held" })), (err: AnyServeError) => {
    assert.equal(err.code, "SHUTTING_DOWN");
    assert.match(err.message, /replica 'r1' is draining/);
    return true;
  });
  assert.equal(d.ready(), false);
  assert.deepEqual([d.health().ready, d.health().reason], [false, "draining"]);
  assert.equal(await d.modelReady({ type: "held" }), false);
  assert.equal(drained, false, "two calls are still in flight");
  h.release();
  await draining;
  assert.deepEqual((await Promise.all(running)).map(value), ["released", "released"], "the calls in flight finished normally");
  await d.drain(); // nothing in flight: at once
  await d.stop();
});

test("states and health: cold until started (lazy), warm, failed after onStart keeps throwing; not ready once every capability failed", async () => {
  const app = new AnyServe();
  app.capability({ type: "fine" }, () => "ok");
  app.capability({ type: "lazy" }, () => "late", { lazy: true });
  let attempts = 0;
  app.capability({ type: "broken" }, () => "never", {
    onStart: () => {
      attempts++;
      throw new Error("no weights");
    },
  });
  let changes = 0;
  const d = dispatcher(app, { execution: execution({ strategy: "async", startRetries: 2 }), onStateChange: () => changes++ });
  assert.deepEqual(d.states(), ["cold", "cold", "cold"]);
  await d.start();
  assert.deepEqual(d.states(), ["warm", "cold", "failed"]);
  assert.equal(attempts, 2, "startRetries attempts, then failed");
  assert.ok(changes >= 2, "the registration is told of each change");
  await assert.rejects(d.infer(call({ type: "broken" })), (err: AnyServeError) => {
    assert.equal(err.code, "CAPABILITY_FAILED");
    assert.match(err.message, /\{type=broken\} cannot start: .*no weights/);
    return true;
  });
  assert.equal(d.health().ready, true, "one capability failing leaves the others serving");
  assert.equal(d.health().load.workers.failed, 1);
  const before = changes;
  assert.equal(value(await d.infer(call({ type: "lazy" }))), "late", "a lazy capability starts on its first call");
  assert.deepEqual(d.states(), ["warm", "warm", "failed"]);
  assert.ok(changes > before);
  const w = d.workers();
  assert.deepEqual(
    w.map((s) => [s.capability, s.state]),
    [
      [{ type: "fine" }, "warm"],
      [{ type: "lazy" }, "warm"],
      [{ type: "broken" }, "failed"],
    ],
  );
  await d.stop();
  assert.deepEqual(d.states(), ["cold", "cold", "failed"]);

  const allBroken = new AnyServe();
  allBroken.capability({ type: "broken" }, () => "never", {
    onStart: () => {
      throw new Error("no weights");
    },
  });
  const b = dispatcher(allBroken, { execution: execution({ strategy: "async", startRetries: 1 }) });
  await b.start();
  const health = b.health();
  assert.equal(health.ready, false);
  assert.match(health.reason ?? "", /every capability failed to start \(1\)/);
  assert.equal(typeof health.load.process.rss_mb, "number");
  await b.stop();
});
