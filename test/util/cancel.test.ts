import assert from "node:assert/strict";
import { test } from "node:test";
import { Cancellation, allAborted, toAbortSignal } from "../../src/util/cancel.js";

test("abort calls every listener once, in order, with the reason set; later aborts do nothing", () => {
  const c = new Cancellation();
  const calls: string[] = [];
  c.addEventListener("abort", () => calls.push(`fn:${String(c.reason)}`));
  c.addEventListener("abort", { handleEvent: () => calls.push("object") });
  assert.equal(c.aborted, false);
  c.abort("first");
  c.abort("second");
  assert.deepEqual(calls, ["fn:first", "object"]);
  assert.equal(c.reason, "first");
});

test("a removed listener is not called; one added after the abort is not called either (as AbortSignal)", () => {
  const c = new Cancellation();
  let removed = 0,
    late = 0;
  const l = (): void => {
    removed++;
  };
  c.addEventListener("abort", l);
  c.removeEventListener("abort", l);
  c.abort();
  c.addEventListener("abort", () => {
    late++;
  });
  assert.equal(removed, 0);
  assert.equal(late, 0);
  assert.ok(c.reason instanceof DOMException, "the default reason is an AbortError, like AbortController's");
});

test("signal is a real AbortSignal made on first use that follows the cancellation, before or after it fired", () => {
  const early = new Cancellation();
  const s = early.signal;
  assert.ok(s instanceof AbortSignal);
  assert.equal(early.signal, s, "the same signal every time");
  let fired = 0;
  s.addEventListener("abort", () => {
    fired++;
  });
  early.abort(new Error("gone"));
  assert.equal(fired, 1);
  assert.equal((s.reason as Error).message, "gone");

  const late = new Cancellation();
  late.abort("why");
  assert.equal(late.signal.aborted, true);
  assert.equal(late.signal.reason, "why");
});

test("toAbortSignal: an AbortSignal is returned as is; a Cancellation gives its signal", () => {
  const ac = new AbortController();
  assert.equal(toAbortSignal(ac.signal), ac.signal);
  const c = new Cancellation();
  assert.equal(toAbortSignal(c), c.signal);
});

test("allAborted fires only once every signal has fired, with the first signal's reason", () => {
  const a = new Cancellation(),
    b = new AbortController();
  const all = allAborted([a, b.signal]);
  a.abort("a-left");
  assert.equal(all.aborted, false);
  b.abort("b-left");
  assert.equal(all.aborted, true);
  assert.equal(all.reason, "a-left");
  const done = new Cancellation();
  done.abort("x");
  assert.equal(allAborted([done]).aborted, true, "already-aborted inputs count at once");
});

test("a listener that throws does not stop the others, and abort() itself does not throw (as EventTarget)", async () => {
  const c = new Cancellation();
  let second = 0;
  c.addEventListener("abort", () => {
    throw new Error("listener bug");
  });
  c.addEventListener("abort", () => {
    second++;
  });
  // The test runner fails a test on any uncaught exception: take its handlers out while this one is expected.
  const runners = process.listeners("uncaughtException");
  process.removeAllListeners("uncaughtException");
  try {
    const uncaught = new Promise<Error>((resolve) => process.once("uncaughtException", resolve));
    assert.doesNotThrow(() => c.abort("x"));
    assert.equal(second, 1);
    assert.equal((await uncaught).message, "listener bug");
  } finally {
    for (const l of runners) process.on("uncaughtException", l);
  }
});
