// `anyserve up` keeps replicas alive: a killed replica is restarted and serves again; one that
// crash-loops is reported and not restarted forever.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { SERVING_NODE_FLAGS } from "../../src/util/node-flags.js";
import { Client } from "../../src/sdk/client.js";
import { FIXTURES, startCli, waitFor } from "../helpers/processes.js";

interface Replica {
  replicaId: string;
  state: string;
  pid: number | null;
  restarts: number;
  lastExit: string | null;
}
async function deployment(url: string): Promise<Record<string, { replicas: Replica[] }>> {
  return ((await (await fetch(`${url}/api/deployment`)).json()) as { services: Record<string, { replicas: Replica[] }> }).services;
}

test("a SIGKILLed replica is restarted by up and takes traffic again; a crash-looping one is reported", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-sup-"));
  const file = path.join(dir, "anyserve.yaml");
  writeFileSync(
    file,
    [
      "services:",
      "  good:",
      `    app: ${path.join(FIXTURES, "test_app.ts:app")}`,
      "    deployment: {threading_strategy: async, thread_count: 8}",
      "    monitoring: {health_check_interval: 1}",
      "  broken:",
      `    app: ${path.join(FIXTURES, "broken_app.ts:app")}`,
      "",
    ].join("\n"),
  );
  const up = await startCli(t, ["up", file, "--port", "0", "--grpc-port", "0"], {}, 120_000);
  const url = up.ready.url!;

  // The broken service was given up on (start() settles on crash_looping), with its reason.
  const broken = (await deployment(url)).broken!.replicas[0]!;
  assert.equal(broken.state, "crash_looping");
  assert.match(broken.lastExit!, /missing model weights/);
  assert.equal(broken.restarts, 4, "5 starts in all, then no more");

  const before = (await deployment(url)).good!.replicas[0]!;
  assert.equal(before.state, "running");
  process.kill(before.pid!, "SIGKILL");
  const after = await waitFor(
    "restarted",
    async () => {
      const r = (await deployment(url)).good!.replicas[0]!;
      return r.state === "running" && r.pid !== before.pid ? r : undefined;
    },
    30_000,
  );
  assert.equal(after!.restarts, 1);
  assert.match(after!.lastExit!, /SIGKILL/);
  const client = new Client({ apiServer: url });
  t.after(() => client.close());
  const who = await waitFor("serving again", async () => client.infer({ type: "whoami" }, { x: 1 }).catch(() => undefined), 30_000);
  assert.equal(who, "good-0");
});

test("replicas do not outlive a supervisor that is SIGKILLed: they drain and exit by themselves", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-orphan-"));
  const file = path.join(dir, "anyserve.yaml");
  writeFileSync(
    file,
    `services:\n  svc:\n    app: ${path.join(FIXTURES, "test_app.ts:app")}\n    deployment: {threading_strategy: async, replicas: 2}\n`,
  );
  const up = await startCli(t, ["up", file, "--port", "0", "--grpc-port", "0"], {}, 120_000);
  const pids = Object.values(await deployment(up.ready.url!)).flatMap((s) => s.replicas.map((r) => r.pid!));
  assert.equal(pids.length, 2);
  // Each replica runs with the serving processes' node flags (src/util/node-flags.ts).
  for (const pid of pids) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    for (const flag of SERVING_NODE_FLAGS) assert.ok(argv.includes(flag), `replica ${pid} runs without ${flag}: ${argv.join(" ")}`);
  }
  up.child.kill("SIGKILL");
  await up.exited;
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await waitFor("every replica gone", () => pids.every((pid) => !alive(pid)), 30_000);
});
