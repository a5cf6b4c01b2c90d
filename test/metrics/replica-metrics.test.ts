// Replica metrics with real processes: `anyserve start` (no API server) answers a known number of
// requests — OK, handler errors, coded errors, a deadline, a cancellation, QUEUE_FULL refusals,
// batches — and GET /metrics shows exactly those numbers; `--no-metrics` answers 404. The health
// probe (a frame of kind "health") carries the replica's load.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { replicaArgs } from "../../src/deploy/replica-args.js";
import { parseReplicaDoc } from "../../src/config/replica.js";
import { resolveService } from "../../src/config/resolve.js";
import { ObjectStore } from "../../src/objects/store.js";
import { FrameClient } from "../../src/transport/frame-client.js";
import { encodeRequest } from "../../src/protocol/codec.js";
import { inputsToRequest } from "../../src/protocol/values.js";
import { Cleanups, FIXTURES, startCli, waitFor, type Proc } from "../helpers/processes.js";
import { freshReplicaId, infer } from "../execution/helpers.js";

const TEST_APP = `${FIXTURES}/test_app.ts:app`;
const EXEC_APP = `${FIXTURES}/exec_e2e_app.ts:app`;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the subset prom-client writes). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

class Scrape {
  constructor(
    readonly samples: Sample[],
    readonly text: string,
  ) {}
  /** Every sample of `name` whose labels include `labels`. */
  all(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }
  /** The one sample of `name` with `labels` (fails when absent or ambiguous). */
  one(name: string, labels: Record<string, string> = {}): number {
    const found = this.all(name, labels);
    assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: expected one sample, found ${found.length}`);
    return found[0]!.value;
  }
  /** A histogram's buckets are cumulative, +Inf equals _count. */
  checkHistogram(name: string, labels: Record<string, string>): { count: number; sum: number } {
    const buckets = this.all(`${name}_bucket`, labels);
    assert.ok(buckets.length > 1, `${name}${JSON.stringify(labels)} has buckets`);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${name} buckets are cumulative`);
    const count = this.one(`${name}_count`, labels);
    assert.equal(buckets.at(-1)!.labels.le, "+Inf");
    assert.equal(buckets.at(-1)!.value, count);
    return { count, sum: this.one(`${name}_sum`, labels) };
  }
}

async function scrape(http: string): Promise<Scrape> {
  const res = await fetch(`${http}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return new Scrape(parseExposition(text), text);
}

async function health(http: string): Promise<{
  ready: boolean;
  reason?: string;
  load: { in_flight: number; queue_depth: number; workers: Record<string, number>; process: { rss_mb: number; cpu_percent: number } };
}> {
  const client = new FrameClient({ url: http });
  try {
    const reply = await client.request({ k: "health" }, Buffer.alloc(0), { timeoutMs: 5_000 });
    return JSON.parse(reply.body.toString()) as Awaited<ReturnType<typeof health>>;
  } finally {
    await client.close();
  }
}

const hooks = new Cleanups();
const objectDir = mkdtempSync(path.join(os.tmpdir(), "anyserve-metrics-"));
const reps: Record<string, Proc> = {};
const ids: Record<string, string> = {};

describe("replica metrics (GET /metrics on anyserve start)", () => {
  before(async () => {
    const flags: Record<string, string[]> = {
      // Default strategy, its own object store directory.
      main: ["--app", TEST_APP, "--object-store", objectDir, "--service", "metrics-svc"],
      // One request runs, two wait, the rest are refused.
      full: ["--app", TEST_APP, "--threading-strategy", "single", "--queue-size", "2"],
      batch: ["--app", EXEC_APP, "--threading-strategy", "async", "--thread-count", "1", "--batch-size", "8", "--batch-wait-ms", "5"],
      off: ["--app", TEST_APP, "--no-metrics"],
    };
    await Promise.all(
      Object.entries(flags).map(async ([name, extra]) => {
        ids[name] = freshReplicaId(`metrics-${name}`);
        reps[name] = await startCli(hooks, ["start", "--port", "0", "--http-port", "0", "--replica-id", ids[name]!, ...extra], {
          EXEC_AT: "metrics",
        });
      }),
    );
  });
  after(async () => {
    await hooks.run();
    rmSync(objectDir, { recursive: true, force: true });
  });

  test("exact request counts by capability and code; histogram counts equal them; gauges, workers, object store and process metrics", async () => {
    const http = reps.main!.ready.http!;
    // Two objects in the store's directory before the first scrape reads it.
    const store = new ObjectStore({ dir: objectDir });
    await store.create(Buffer.alloc(1000, 1));
    await store.create({ rows: [1, 2, 3] });

    const echo = await Promise.all(Array.from({ length: 40 }, (_, i) => infer(http, { type: "echo" }, { text: `hi ${i}` })));
    assert.ok(echo.every((r) => r.status === 200));
    const fail = await Promise.all(Array.from({ length: 10 }, () => infer(http, { type: "fail" }, { text: "x" })));
    assert.ok(fail.every((r) => r.code === "WORKER_ERROR"));
    const coded = await Promise.all(Array.from({ length: 5 }, () => infer(http, { type: "fail_coded" }, { text: "x" })));
    assert.ok(coded.every((r) => r.code === "INVALID_PARAMETER"));
    const late = await infer(http, { type: "slow" }, { ms: 5_000 }, { "x-anyserve-timeout-ms": "150" });
    assert.equal(late.code, "DEADLINE_EXCEEDED");
    const none = await infer(http, { type: "nothing-serves-this" }, { x: 1 });
    assert.equal(none.code, "NO_MATCHING_CAPABILITY");
    // A client that goes away while its request runs: CANCELLED.
    const ac = new AbortController();
    const leaving = fetch(`${http}/infer`, {
      method: "POST",
      signal: ac.signal,
      headers: { "content-type": "application/json", "x-capability-type": "slow" },
      body: new Uint8Array(encodeRequest(inputsToRequest({ ms: 5_000 }), "json").body),
    }).catch((err: unknown) => err);
    await waitFor(
      "the slow request to run",
      async () => (await scrape(http)).one("anyserve_replica_in_flight", { capability: "type=slow" }) === 1,
    );
    ac.abort();
    await leaving;
    await waitFor(
      "the cancellation to be counted",
      async () =>
        (await scrape(http)).all("anyserve_replica_requests_total", { capability: "type=slow", code: "CANCELLED" })[0]?.value === 1,
    );

    const s = await scrape(http);
    const req = (capability: string, code: string): number => s.one("anyserve_replica_requests_total", { capability, code });
    assert.equal(req("type=echo", "OK"), 40);
    assert.equal(req("type=fail", "WORKER_ERROR"), 10);
    assert.equal(req("type=fail", "OK"), 0);
    assert.equal(req("type=fail_coded", "INVALID_PARAMETER"), 5);
    assert.equal(req("type=slow", "DEADLINE_EXCEEDED"), 1);
    assert.equal(req("type=slow", "CANCELLED"), 1);
    assert.equal(req("", "NO_MATCHING_CAPABILITY"), 1, "requests no handler matched: empty capability");
    assert.equal(
      s.all("anyserve_replica_requests_total").reduce((a, x) => a + x.value, 0),
      40 + 10 + 5 + 1 + 1 + 1,
      "nothing else was counted",
    );
    // Default labels: the replica and the service.
    for (const x of s.all("anyserve_replica_requests_total")) {
      assert.equal(x.labels.replica, ids.main);
      assert.equal(x.labels.service, "metrics-svc");
    }

    const wait = s.checkHistogram("anyserve_replica_queue_wait_seconds", { capability: "type=echo" });
    const exec = s.checkHistogram("anyserve_replica_execution_seconds", { capability: "type=echo" });
    assert.equal(wait.count, 40);
    assert.equal(exec.count, 40);
    assert.ok(exec.sum > 0 && exec.sum < 40, `execution sum ${exec.sum} s`);
    assert.equal(s.checkHistogram("anyserve_replica_execution_seconds", { capability: "type=fail" }).count, 10);
    assert.equal(s.checkHistogram("anyserve_replica_execution_seconds", { capability: "type=fail_coded" }).count, 5);
    // Both slow requests started; each ran until its worker answered the abort.
    const slow = s.checkHistogram("anyserve_replica_execution_seconds", { capability: "type=slow" });
    assert.equal(slow.count, 2);
    assert.ok(slow.sum >= 0.14 && slow.sum < 5, `slow execution sum ${slow.sum} s`);
    // Buckets span 100 µs … 60 s.
    const les = s.all("anyserve_replica_execution_seconds_bucket", { capability: "type=echo" }).map((b) => b.labels.le);
    assert.equal(les[0], "0.0001");
    assert.ok(les.includes("60") && les.at(-1) === "+Inf");
    // The non-batch handlers have no batch_size series.
    assert.equal(s.all("anyserve_replica_batch_size_count").length, 0);

    // Gauges, read when scraped: all idle now.
    for (const cap of ["type=echo", "type=fail", "type=slow"]) {
      assert.equal(s.one("anyserve_replica_in_flight", { capability: cap }), 0);
      assert.equal(s.one("anyserve_replica_queue_depth", { capability: cap }), 0);
    }
    const w = (state: string): number => s.one("anyserve_replica_workers", { capability: "type=echo", state });
    assert.equal(w("warm"), 1, "the default strategy has one warm worker per capability");
    assert.equal(w("idle"), 1);
    assert.equal(w("starting"), 0);
    assert.equal(w("failed"), 0);
    assert.equal(s.all("anyserve_replica_workers", { state: "warm" }).length, 7, "one series per handler of test_app");

    assert.equal(s.one("anyserve_object_store_objects"), 2);
    assert.ok(s.one("anyserve_object_store_bytes") > 1000, "the two objects' bytes (with headers)");

    assert.ok(s.one("anyserve_process_cpu_seconds_total") > 0);
    assert.ok(s.one("anyserve_process_resident_memory_bytes") > 10 * 1024 * 1024);
    assert.match(s.text, /# TYPE anyserve_replica_requests_total counter/);
    assert.match(s.text, /# TYPE anyserve_replica_execution_seconds histogram/);
    assert.match(s.text, /# TYPE anyserve_replica_workers gauge/);

    const h = await health(http);
    assert.equal(h.ready, true);
    const { process: proc, ...load } = h.load;
    // The replica's workers, counted once: its 7 capabilities share the event loop.
    assert.deepEqual(load, { in_flight: 0, queue_depth: 0, workers: { starting: 0, warm: 1, idle: 1, failed: 0 } });
    assert.ok(proc.rss_mb > 10 && proc.rss_mb < 100_000, `rss ${proc.rss_mb} MB`);
    assert.ok(proc.cpu_percent >= 0 && proc.cpu_percent < 1000, `cpu ${proc.cpu_percent} %`);
  });

  test("a full queue: QUEUE_FULL refusals are counted; in-flight and queue-depth gauges and the health probe's load show the backlog; queue wait is measured", async () => {
    const http = reps.full!.ready.http!;
    const MS = 400;
    const all = Array.from({ length: 5 }, () => infer(http, { type: "slow" }, { ms: MS }));
    // 1 running + queue_size 2: two of the five are refused at once.
    await waitFor(
      "the backlog",
      async () => {
        const s = await scrape(http);
        return (
          s.one("anyserve_replica_requests_total", { capability: "type=slow", code: "QUEUE_FULL" }) === 2 &&
          s.one("anyserve_replica_in_flight", { capability: "type=slow" }) === 1 &&
          s.one("anyserve_replica_queue_depth", { capability: "type=slow" }) === 2
        );
      },
      5_000,
      10,
    );
    const busy = await health(http);
    assert.equal(busy.load.in_flight, 1);
    assert.equal(busy.load.queue_depth, 2);
    const replies = await Promise.all(all);
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 200, 503, 503]);

    const s = await scrape(http);
    assert.equal(s.one("anyserve_replica_requests_total", { capability: "type=slow", code: "OK" }), 3);
    assert.equal(s.one("anyserve_replica_requests_total", { capability: "type=slow", code: "QUEUE_FULL" }), 2);
    const wait = s.checkHistogram("anyserve_replica_queue_wait_seconds", { capability: "type=slow" });
    const exec = s.checkHistogram("anyserve_replica_execution_seconds", { capability: "type=slow" });
    assert.equal(wait.count, 3, "refused requests never started");
    assert.equal(exec.count, 3);
    // One after another: the second waited ~1 run, the third ~2.
    assert.ok(wait.sum >= ((3 * MS) / 1000) * 0.9 && wait.sum < 3, `queue wait sum ${wait.sum} s`);
    assert.ok(exec.sum >= ((3 * MS) / 1000) * 0.9 && exec.sum < 3, `execution sum ${exec.sum} s`);
    assert.equal(s.one("anyserve_replica_in_flight", { capability: "type=slow" }), 0);
    assert.equal(s.one("anyserve_replica_queue_depth", { capability: "type=slow" }), 0);
    assert.equal(s.all("anyserve_replica_requests_total", { service: "metrics-svc" }).length, 0, "no service label without --service");
    assert.equal(s.all("anyserve_object_store_bytes").length, 1, "anyserve start always has an object store");
  });

  test("batching: batch_size observes each handler call; requests and histograms count every request", async () => {
    const http = reps.batch!.ready.http!;
    const N = 64;
    const replies = await Promise.all(
      Array.from({ length: N }, (_, i) => infer(http, { type: "batch", at: "metrics" }, { text: `item-${i}` })),
    );
    assert.ok(replies.every((r) => r.status === 200));
    const calls = new Set(replies.map((r) => (r.value as { call: string }).call)).size;
    const cap = "at=metrics,type=batch";

    const s = await scrape(http);
    assert.equal(s.one("anyserve_replica_requests_total", { capability: cap, code: "OK" }), N);
    const batch = s.checkHistogram("anyserve_replica_batch_size", { capability: cap });
    assert.equal(batch.count, calls, "one observation per handler call");
    assert.equal(batch.sum, N, "the batch sizes add up to the requests");
    assert.ok(calls < N, `${calls} handler calls batched ${N} requests`);
    assert.equal(s.one("anyserve_replica_batch_size_bucket", { capability: cap, le: "8" }), calls, "no batch above batch_size 8");
    assert.equal(s.checkHistogram("anyserve_replica_queue_wait_seconds", { capability: cap }).count, N);
    const exec = s.checkHistogram("anyserve_replica_execution_seconds", { capability: cap });
    assert.equal(exec.count, N);
    assert.ok(exec.sum >= N * 0.045, `every request of a batch ran the 50 ms handler call: ${exec.sum} s`);
    assert.deepEqual(
      s.all("anyserve_replica_batch_size_count").map((x) => x.labels.capability),
      [cap],
      "only the batch handler has batch sizes",
    );
    // Lazy capabilities nobody called have no workers.
    assert.equal(s.one("anyserve_replica_workers", { capability: "at=metrics,type=lazy", state: "warm" }), 0);
    assert.equal(s.one("anyserve_replica_workers", { capability: cap, state: "warm" }), 1);
  });

  test("--no-metrics: GET /metrics is 404 ROUTE_NOT_FOUND; serving and the health probe's load are unchanged", async () => {
    const http = reps.off!.ready.http!;
    const res = await fetch(`${http}/metrics`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { code: string }).code, "ROUTE_NOT_FOUND");
    assert.equal((await infer(http, { type: "echo" }, { text: "hi" })).status, 200);
    const h = await health(http);
    assert.equal(h.ready, true);
    assert.equal(h.load.in_flight, 0);
    assert.equal(h.load.workers.warm, 1);
  });
});

describe("replicaArgs and monitoring.enable_metrics", () => {
  const docOf = (monitoring: Record<string, unknown>) => {
    const cfg = resolveService({ app: "app.ts:app", monitoring });
    const args = replicaArgs({ service: "s", cfg, replicaId: "s-0", apiServer: "http://127.0.0.1:8080", nodeName: "n" });
    assert.deepEqual(args.slice(0, 2), ["start", "--replica-config"]);
    return { cfg, doc: parseReplicaDoc(args[2]) };
  };
  test("the replica gets the resolved config whole: enable_metrics false stays false, the default true", () => {
    const off = docOf({ enable_metrics: false });
    assert.equal(off.doc.config.monitoring.enable_metrics, false);
    assert.deepEqual(off.doc.config, off.cfg);
    assert.equal(docOf({}).doc.config.monitoring.enable_metrics, true);
  });
});
