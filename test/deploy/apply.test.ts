// `anyserve apply` changes a running deployment under a steady load without losing a request:
// scaling 1 → 3 → 1, and a restart-type change that replaces every replica (rolling).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import { Client } from "../../src/sdk/client.js";
import { BIN, FIXTURES, startCli, waitFor } from "../helpers/processes.js";

const run = promisify(execFile);

async function registry(url: string): Promise<{ replica_id: string }[]> {
  return ((await (await fetch(`${url}/registry`)).json()) as { replicas: { replica_id: string }[] }).replicas;
}

/** `anyserve up` of one service `svc` (test_app) with 4 callers asking `whoami` in a loop until `stop()`. */
async function upUnderLoad(
  t: test.TestContext,
  deployment: (replicas: number, threads: number) => string,
  replicas: number,
  threads: number,
) {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-apply-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "anyserve.yaml");
  const write = (n: number, k: number) =>
    writeFileSync(
      file,
      `services:\n  svc:\n    app: ${path.join(FIXTURES, "test_app.ts:app")}\n    deployment: ${deployment(n, k)}\n    monitoring: {health_check_interval: 1}\n`,
    );
  write(replicas, threads);
  const up = await startCli(t, ["up", file, "--port", "0", "--grpc-port", "0"]);
  const url = up.ready.url!;
  const client = new Client({ apiServer: url });
  t.after(() => client.close());
  const load = { ok: 0, failures: [] as string[], seen: new Set<string>(), stopped: false };
  const worker = async () => {
    while (!load.stopped) {
      try {
        load.seen.add(String(await client.infer({ type: "whoami" }, { x: 1 })));
        load.ok++;
      } catch (err) {
        load.failures.push((err as Error).message);
      }
    }
  };
  const workers = Promise.all(Array.from({ length: 4 }, worker));
  return {
    url,
    load,
    /** Writes the file with `n` replicas and `k` threads and applies it; resolves with what `anyserve apply` printed. */
    async apply(n: number, k: number): Promise<string> {
      write(n, k);
      return (await run(process.execPath, [BIN, "apply", file, "--api-server", url])).stdout;
    },
    async stop(): Promise<void> {
      load.stopped = true;
      await workers;
    },
  };
}

const asyncService = (replicas: number, threads: number) => `{threading_strategy: async, thread_count: ${threads}, replicas: ${replicas}}`;

test("anyserve apply scales 1 → 3 → 1 under a steady load without losing a request", async (t) => {
  const d = await upUnderLoad(t, asyncService, 1, 16);
  const apply = async (n: number) => {
    await d.apply(n, 16);
    await waitFor(`${n} replicas`, async () => (await registry(d.url)).length === n, 60_000);
  };
  await apply(3);
  await waitFor("new replicas take traffic", () => d.load.seen.size === 3, 30_000);
  await apply(1);
  const before = d.load.ok;
  await waitFor("requests keep flowing after scale-down", () => d.load.ok > before + 50, 30_000);
  await d.stop();
  assert.deepEqual(d.load.failures, []);
  assert.ok(d.load.ok > 100, `${d.load.ok} requests`);
});

test("anyserve apply with a restart-type change replaces every replica one by one under a steady load without losing a request", async (t) => {
  const d = await upUnderLoad(t, asyncService, 2, 8);
  assert.match(await d.apply(2, 16), /changed deployment\.thread_count \(replicas replaced one by one\)/);
  // apply answers once the roll is over: both replicas are new processes, the old ones are gone.
  assert.deepEqual((await registry(d.url)).map((e) => e.replica_id).sort(), ["svc-0-r2", "svc-1-r2"]);
  const before = d.load.ok;
  await waitFor(
    "the new replicas take traffic",
    () => d.load.seen.has("svc-0-r2") && d.load.seen.has("svc-1-r2") && d.load.ok > before + 50,
    30_000,
  );
  await d.stop();
  assert.deepEqual(d.load.failures, []);
});
