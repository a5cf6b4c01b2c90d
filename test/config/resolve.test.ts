// The config pipeline's pure parts: one schema's defaults, resolution per strategy, the replica
// document's round trip, and `anyserve start`'s flags derived from the schema.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Command } from "commander";
import { addConfigFlags, flagOfField, replicaDocFromFlags } from "../../src/cli/config-flags.js";
import { ConfigError } from "../../src/config/errors.js";
import { serviceFields } from "../../src/config/fields.js";
import { parseReplicaDoc } from "../../src/config/replica.js";
import { DEFAULT_OBJECT_STORE_DIR, resolveService } from "../../src/config/resolve.js";
import { apiServerSchema } from "../../src/config/schema.js";
import { DEFAULT_STALL_MS, DEFAULT_WARMUP_MS } from "../../src/gateway/forwarder.js";
import { checkExecution } from "../../src/execution/config.js";
import { createStrategy, strategyNames } from "../../src/execution/index.js";
import { executionOf } from "../../src/replica/service-config.js";
import { strategyOptions } from "../execution/helpers.js";

describe("resolveService", () => {
  test("defaults are the seed's: single × 1, queue 1000, timeout 30 s, no batching, heartbeat 10 s", () => {
    const c = resolveService({ app: "a.ts" }, { cpus: 6 });
    assert.equal(c.deployment.threading_strategy, "single");
    assert.equal(c.deployment.thread_count, 1);
    assert.equal(c.deployment.max_thread_count, 6);
    assert.equal(c.performance.queue_size, 1000);
    assert.equal(c.performance.timeout, 30);
    assert.equal(c.performance.batch_size, 1);
    assert.equal(c.performance.batch_wait_ms, 5);
    assert.equal(c.monitoring.health_check_interval, 10);
    assert.equal(c.object_store.dir, DEFAULT_OBJECT_STORE_DIR);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.deployment) && Object.isFrozen(c.deployment.worker_env));
  });

  test("thread_count follows the strategy when unset; a given one wins", () => {
    const threads = (threading_strategy: string, extra: Record<string, unknown> = {}) =>
      resolveService({ app: "a.ts", deployment: { threading_strategy: threading_strategy as never, ...extra } }, { cpus: 3 }).deployment;
    assert.equal(threads("single").thread_count, 1);
    assert.equal(threads("async").thread_count, 64);
    assert.equal(threads("multi").thread_count, 3);
    assert.equal(threads("process").thread_count, 3);
    assert.equal(threads("pool").thread_count, 1);
    assert.equal(threads("pool").max_thread_count, 3);
    assert.equal(threads("pool", { thread_count: 5 }).max_thread_count, 5, "the pool's bound is at least thread_count");
    assert.equal(threads("pool", { thread_pool_size: 7 }).max_thread_count, 7, "the seed's thread_pool_size bounds the pool");
    assert.equal(threads("multi", { thread_count: 2 }).thread_count, 2);
  });

  test("a resolved config resolves to itself (up resolves once; the replica's check changes nothing)", () => {
    const once = resolveService({ app: "a.ts", deployment: { threading_strategy: "pool" } }, { cpus: 2 });
    assert.deepEqual(resolveService(once, { cpus: 64 }), once);
  });

  test("every problem is reported at once, with the field's path and the value", () => {
    assert.throws(
      () => resolveService({ app: "", performance: { queue_size: -1, batch_wait_ms: "x" as never }, deployment: { nope: 1 } as never }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const paths = err.issues.map((i) => i.path).sort();
        assert.deepEqual(paths, ["app", "deployment.nope", "performance.batch_wait_ms", "performance.queue_size"]);
        assert.match(err.message, /queue_size: .*>=0; got -1/);
        return true;
      },
    );
  });

  test("executionOf maps names and units only", () => {
    const c = resolveService({
      app: "a.ts",
      deployment: { threading_strategy: "pool", thread_count: 2, max_thread_count: 8, idle_timeout: 1.5, lazy: true, worker_env: ["A"] },
      resources: { memory_mb: 256 },
      performance: { queue_size: 100, batch_size: 8, batch_wait_ms: 2.5, abort_grace: 0.2 },
    });
    assert.deepEqual(executionOf(c), {
      strategy: "pool",
      threads: 2,
      maxThreads: 8,
      queueSize: 100,
      batchSize: 8,
      batchWaitMs: 2.5,
      idleTimeoutMs: 1500,
      memoryMb: 256,
      graceMs: 200,
      startRetries: 3,
      poolIdleMs: 30_000,
      workerEnv: ["A"],
      lazy: true,
    });
  });

  test("worker strategies need the app's module path; an unknown strategy lists the valid ones", async () => {
    assert.deepEqual(strategyNames(), ["single", "async", "multi", "pool", "process"]);
    const exec = executionOf(resolveService({ app: "a.ts", deployment: { threading_strategy: "process" } }));
    assert.throws(() => checkExecution(exec, undefined), /load it themselves: give the app's module path/);
    assert.throws(
      () => checkExecution({ ...exec, strategy: "threads" }, "a.ts"),
      /unknown 'threads'; valid: single, async, multi, pool, process/,
    );
    const o = await strategyOptions("echo");
    assert.throws(() => createStrategy("fibers", o), /unknown execution strategy 'fibers'; valid: single, async, multi, pool, process/);
  });
});

describe("the replica document", () => {
  test("round-trips as JSON and is validated by the same schema on arrival", () => {
    const config = resolveService({ app: "/x/a.ts:app", performance: { batch_size: 5000, batch_wait_ms: 2.5 } }, { cpus: 2 });
    const doc = parseReplicaDoc(JSON.stringify({ replica_id: "s-0", service: "s", api_server: "http://127.0.0.1:1", port: 0, config }));
    assert.deepEqual(doc.config, config);
    assert.equal(doc.http_port, 0);
    assert.throws(() => parseReplicaDoc({ config: { ...config, performance: { ...config.performance, queue_size: 1e9 } } }), /queue_size/);
    assert.throws(() => parseReplicaDoc("{nope"), /not valid JSON/);
    assert.throws(() => parseReplicaDoc({ config, api_server: "ftp://x" }), /api_server/);
  });
});

describe("anyserve start's flags", () => {
  const parse = (argv: string[]) => {
    const cmd = addConfigFlags(new Command())
      .exitOverride()
      .configureOutput({ writeErr: () => undefined });
    cmd.parse(argv, { from: "user" });
    return replicaDocFromFlags(cmd);
  };

  test("every replica-side field has a flag named after it; placement and balancing fields have none", () => {
    for (const f of serviceFields()) {
      const flag = flagOfField(f.path);
      if (f.meta.flag === false) assert.equal(flag, undefined, f.path);
      else assert.ok(flag, `${f.path} has no flag`);
    }
    assert.equal(flagOfField("performance.queue_size"), "--queue-size");
    assert.equal(flagOfField("deployment.thread_count"), "--thread-count");
    assert.equal(flagOfField("monitoring.enable_metrics"), "--metrics");
    assert.equal(flagOfField("deployment.replicas"), undefined);
  });

  test("flags become the same document the schema would make; unset ones take the schema's defaults", () => {
    const doc = parse([
      "--app",
      "a.ts:app",
      "--threading-strategy",
      "pool",
      "--thread-count",
      "2",
      "--max-thread-count",
      "8",
      "--queue-size",
      "0",
      "--batch-size",
      "5000",
      "--batch-wait-ms",
      "2.5",
      "--idle-timeout",
      "1.5",
      "--memory-mb",
      "256",
      "--abort-grace",
      "0.2",
      "--worker-env",
      "A, B",
      "--lazy",
      "--no-metrics",
      "--replica-id",
      "r1",
      "--port",
      "0",
    ]);
    const expected = resolveService({
      app: "a.ts:app",
      deployment: {
        threading_strategy: "pool",
        thread_count: 2,
        max_thread_count: 8,
        idle_timeout: 1.5,
        lazy: true,
        worker_env: ["A", "B"],
      },
      resources: { memory_mb: 256 },
      performance: { queue_size: 0, batch_size: 5000, batch_wait_ms: 2.5, abort_grace: 0.2 },
      monitoring: { enable_metrics: false },
    });
    assert.deepEqual(doc.config, expected);
    assert.equal(doc.replica_id, "r1");
    assert.equal(doc.port, 0);
    assert.equal(doc.host, "127.0.0.1");
  });

  test("a bad value is refused by the schema's own range, named by its flag", () => {
    assert.throws(
      () => parse(["--app", "a.ts", "--batch-size", "70000"]),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.issues[0]?.path, "--batch-size");
        assert.match(err.message, /--batch-size: .*65536; got 70000/);
        return true;
      },
    );
    assert.throws(() => parse(["--app", "a.ts", "--threading-strategy", "fibers"]), /--threading-strategy: .*"fibers"/);
    assert.throws(() => parse(["--app", "a.ts", "--queue-size", "ten"]), /expected a number, got 'ten'/);
    assert.throws(() => parse([]), /--app/);
  });

  test("--replica-config carries the whole document and excludes other config flags", () => {
    const config = resolveService({ app: "a.ts", deployment: { threading_strategy: "async" } });
    const json = JSON.stringify({ replica_id: "x", config });
    assert.deepEqual(parse(["--replica-config", json]).config, config);
    assert.throws(() => parse(["--replica-config", json, "--queue-size", "3"]), /drop --queue-size/);
  });
});

test("the gateway's warm-up and stall defaults are the deployment file's api_server defaults", () => {
  const a = apiServerSchema.parse({});
  assert.equal(a.warmup * 1000, DEFAULT_WARMUP_MS);
  assert.equal(a.stall_timeout * 1000, DEFAULT_STALL_MS);
});
