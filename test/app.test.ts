// Seed app, stream and context behaviours ("App", "Stream", "Context").
import assert from "node:assert/strict";
import { test } from "node:test";
import { Worker } from "node:worker_threads";
import { AnyServe, type TensorSpec } from "../src/sdk/app.js";
import { Context } from "../src/sdk/context.js";
import { Stream } from "../src/sdk/stream.js";
import { silentLogger } from "../src/util/logger.js";

test("a registered handler is stored with its capability, context use and streaming; fn returned unchanged", () => {
  const app = new AnyServe();
  const h = (req: unknown, ctx: unknown) => [req, ctx];
  assert.equal(app.capability({ type: "chat", model: "x" }, h), h);
  const one = (req: unknown) => req;
  app.capability({ type: "one" }, one);
  async function* gen() {
    yield 1;
  }
  app.capability({ type: "gen" }, gen);
  const [a, b, c] = app.handlers;
  assert.deepEqual(a!.capability, { type: "chat", model: "x" });
  assert.equal(a!.usesContext, true);
  assert.equal(b!.usesContext, false);
  assert.equal(a!.isStream, false);
  assert.equal(c!.isStream, true);
});

test("model(name) registers {model: name}, with version when given", () => {
  const app = new AnyServe();
  app.model("resnet", () => 1);
  app.model("bert", () => 1, { version: "2" });
  assert.deepEqual(app.getCapabilities(), [{ model: "resnet" }, { model: "bert", version: "2" }]);
});

test("declared inputs/outputs are checked when registered: name, OIP datatype, integer shape (-1 variable)", () => {
  const app = new AnyServe();
  const ok: TensorSpec = { name: "x", datatype: "FP32", shape: [-1, 3] };
  app.model("m", () => 1, { inputs: [ok], outputs: [{ name: "y", datatype: "BYTES", shape: [1] }] });
  const bad: [unknown, RegExp][] = [
    [[{ name: "", datatype: "FP32", shape: [1] }], /inputs\[0\]\.name must be a non-empty string/],
    [[{ name: "x", datatype: "FLOAT", shape: [1] }], /inputs\[0\] \('x'\)\.datatype must be an OIP datatype .* got FLOAT/],
    [
      [{ name: "x", datatype: "FP32", shape: [-2] }],
      /inputs\[0\] \('x'\)\.shape must be an array of integers, -1 for a variable dimension, got \[-2\]/,
    ],
    [[ok, ok], /inputs\[1\]: 'x' is declared twice/],
    ["x", /inputs must be an array/],
  ];
  for (const [inputs, message] of bad) {
    assert.throws(() => app.model("m2", () => 1, { inputs: inputs as never }), { name: "TypeError", message });
  }
});

test("getCapabilities: [] then one per handler", () => {
  const app = new AnyServe();
  assert.deepEqual(app.getCapabilities(), []);
  app.capability({ type: "a" }, () => 1);
  app.capability({ type: "b" }, () => 1);
  assert.equal(app.getCapabilities().length, 2);
});

test("findHandler: exact, subset, none; first registered match wins", () => {
  const app = new AnyServe();
  const first = () => 1;
  const second = () => 2;
  app.capability({ type: "chat", model: "a" }, first);
  app.capability({ type: "chat", model: "b" }, second);
  assert.equal(app.findHandler({ type: "chat", model: "b" })!.fn, second);
  assert.equal(app.findHandler({ type: "chat" })!.fn, first);
  assert.equal(app.findHandler({ type: "embed" }), undefined);
});

test("stream and non-stream handlers coexist", () => {
  const app = new AnyServe();
  async function* tokens() {
    yield "a";
  }
  const plain = () => "x";
  app.capability({ type: "chat" }, tokens);
  app.capability({ type: "chat" }, plain);
  assert.equal(app.findHandler({ type: "chat" })!.fn, plain);
  assert.equal(app.findAnyHandler({ type: "chat" })!.isStream, true);
  assert.equal(app.findStreamHandler({ type: "chat" })!.fn, tokens);
  assert.equal(app.findStreamHandler({ type: "embed" }), undefined);
});

test("a new stream is open; send is FIFO; close ends it; send after close throws", async () => {
  const s = new Stream<number>();
  assert.equal(s.closed, false);
  s.send(1);
  s.send(2);
  s.close();
  assert.throws(() => s.send(3), /closed stream/);
  const got: number[] = [];
  for await (const v of s) got.push(v);
  assert.deepEqual(got, [1, 2]);
});

test("error(msg) closes and is received after the data sent before it; any JSON value passes", async () => {
  const s = new Stream<unknown>();
  s.send({ a: [1, "x", null] });
  s.send("two");
  s.error("boom");
  assert.equal(s.closed, true);
  const got: unknown[] = [];
  await assert.rejects(async () => {
    for await (const v of s) got.push(v);
  }, /boom/);
  assert.deepEqual(got, [{ a: [1, "x", null] }, "two"]);
});

test("a producer on another thread keeps order", async () => {
  const s = new Stream<number>();
  const worker = new Worker(
    `const { parentPort } = require("node:worker_threads"); for (let i = 0; i < 100; i++) parentPort.postMessage(i); parentPort.postMessage("end");`,
    { eval: true },
  );
  worker.on("message", (m: number | string) => (m === "end" ? s.close() : s.send(m as number)));
  const got: number[] = [];
  for await (const v of s) got.push(v);
  await worker.terminate();
  assert.deepEqual(
    got,
    Array.from({ length: 100 }, (_, i) => i),
  );
});

test("iteration waits for items sent later (consumer first)", async () => {
  const s = new Stream<string>();
  const collected = (async () => {
    const out: string[] = [];
    for await (const v of s) out.push(v);
    return out;
  })();
  s.send("a");
  await Promise.resolve();
  s.send("b");
  s.close();
  assert.deepEqual(await collected, ["a", "b"]);
});

const ctxInit = () => ({
  replicaId: "replica-a",
  capability: { type: "chat" },
  requestId: "r1",
  signal: new AbortController().signal,
  logger: silentLogger,
  deadline: Date.now() + 1000,
});

test("context attributes are stored", () => {
  const ctx = new Context(ctxInit());
  assert.equal(ctx.replicaId, "replica-a");
  assert.deepEqual(ctx.capability, { type: "chat" });
  assert.equal(ctx.requestId, "r1");
  assert.ok(ctx.remainingMs > 0 && ctx.remainingMs <= 1000);
});

test("objects without a store → 'ObjectStore not available'; call without a router → 'cross-replica call not available'", async () => {
  const ctx = new Context(ctxInit());
  assert.throws(() => ctx.objects, /ObjectStore not available/);
  await assert.rejects(ctx.call({ type: "embed" }, {}), /cross-replica call not available/);
});

test("call forwards (capability, inputs, options) and returns the result", async () => {
  const seen: unknown[] = [];
  const ctx = new Context({
    ...ctxInit(),
    caller: {
      call: async (cap, inputs, opts) => {
        seen.push(cap, inputs, opts.timeout! <= 500);
        return "ok";
      },
    },
  });
  assert.equal(await ctx.call({ type: "embed" }, { x: 1 }, { timeout: 500 }), "ok");
  assert.deepEqual(seen, [{ type: "embed" }, { x: 1 }, true]);
});
