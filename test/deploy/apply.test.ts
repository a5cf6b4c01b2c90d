// `anyserve apply` scales a running deployment 1 → 3 → 1 under a steady load without losing a request.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
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

test("anyserve apply scales 1 → 3 → 1 under a steady load without losing a request", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-apply-"));
  const file = path.join(dir, "anyserve.yaml");
  const app = path.join(FIXTURES, "test_app.ts:app");
  const write = (replicas: number) =>
    writeFileSync(
      file,
      `services:\n  svc:\n    app: ${app}\n    deployment: {threading_strategy: async, thread_count: 16, replicas: ${replicas}}\n    monitoring: {health_check_interval: 1}\n`,
    );
  write(1);
  const up = await startCli(t, ["up", file, "--port", "0", "--grpc-port", "0"]);
  const url = up.ready.url!;
  const client = new Client({ apiServer: url });
  t.after(() => client.close());
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const seen = new Set<string>();
  const worker = async () => {
    while (!stop) {
      try {
        seen.add(String(await client.infer({ type: "whoami" }, { x: 1 })));
        ok++;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const load = Promise.all(Array.from({ length: 4 }, worker));
  const apply = async (n: number) => {
    write(n);
    await run(process.execPath, [BIN, "apply", file, "--api-server", url]);
    await waitFor(`${n} replicas`, async () => (await registry(url)).length === n, 60_000);
  };
  await apply(3);
  await waitFor("new replicas take traffic", () => seen.size === 3, 30_000);
  await apply(1);
  const before = ok;
  await waitFor("requests keep flowing after scale-down", () => ok > before + 50, 30_000);
  stop = true;
  await load;
  assert.deepEqual(failures, []);
  assert.ok(ok > 100, `${ok} requests`);
});
