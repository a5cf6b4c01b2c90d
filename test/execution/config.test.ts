// Execution settings: defaults, validation, and the names a wrong strategy is told about.
import assert from "node:assert/strict";
import os from "node:os";
import { test } from "node:test";
import { Command } from "commander";
import { addExecutionOptions, executionFromFlags, type ExecutionFlags } from "../../src/execution/cli-options.js";
import { resolveExecution } from "../../src/execution/config.js";
import { createStrategy, strategyNames } from "../../src/execution/index.js";
import { strategyOptions } from "./helpers.js";

test("defaults: async with 64 at once, queue 1000, no batching, 5 min idle timeout, 1 s abort grace", () => {
  const c = resolveExecution();
  assert.equal(c.strategy, "async");
  assert.equal(c.threads, 64);
  assert.equal(c.queueSize, 1000);
  assert.equal(c.batchSize, 1);
  assert.equal(c.batchWaitMs, 5);
  assert.equal(c.idleTimeoutMs, 300_000);
  assert.equal(c.graceMs, 1_000);
  assert.equal(c.lazy, false);
  assert.equal(resolveExecution({ strategy: "multi" }, "app.ts").threads, os.availableParallelism());
  assert.equal(resolveExecution({ strategy: "pool" }, "app.ts").threads, 1);
});

test("an unknown strategy lists the valid ones; worker strategies need the app's module path", () => {
  assert.deepEqual(strategyNames(), ["single", "async", "multi", "pool", "process"]);
  assert.throws(() => resolveExecution({ strategy: "threads" }), /unknown 'threads'; valid: single, async, multi, pool, process/);
  assert.throws(() => resolveExecution({ strategy: "process" }), /load it themselves: give the app's module path/);
  assert.throws(() => resolveExecution({ queueSize: -1 }), /queueSize/);
});

test("createStrategy: an unknown name is an error listing the valid names", async () => {
  const o = await strategyOptions("echo");
  assert.throws(() => createStrategy("fibers", o), /unknown execution strategy 'fibers'; valid: single, async, multi, pool, process/);
  assert.throws(() => createStrategy("multi", { ...o, appSpec: undefined }), /needs its module path/);
});

test("anyserve start flags become the execution settings", () => {
  const cmd = addExecutionOptions(new Command()).exitOverride();
  cmd.parse(
    [
      "--strategy",
      "pool",
      "--threads",
      "2",
      "--max-threads",
      "8",
      "--queue-size",
      "100",
      "--batch-size",
      "8",
      "--batch-wait-ms",
      "5",
      "--idle-timeout",
      "1.5",
      "--memory-mb",
      "256",
      "--abort-grace",
      "0.2",
      "--worker-env",
      "A, B",
      "--lazy",
    ],
    { from: "user" },
  );
  assert.deepEqual(executionFromFlags(cmd.opts<ExecutionFlags>()), {
    strategy: "pool",
    threads: 2,
    maxThreads: 8,
    queueSize: 100,
    batchSize: 8,
    batchWaitMs: 5,
    idleTimeoutMs: 1500,
    memoryMb: 256,
    graceMs: 200,
    workerEnv: ["A", "B"],
    lazy: true,
  });
  assert.throws(
    () =>
      addExecutionOptions(new Command())
        .exitOverride()
        .configureOutput({ writeErr: () => undefined })
        .parse(["--strategy", "nope"], { from: "user" }),
    /expected one of single, async, multi, pool, process/,
  );
});
