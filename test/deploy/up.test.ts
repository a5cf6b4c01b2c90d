// `anyserve up` with the seed's YAML example, and `anyserve apply` scaling under load.
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
const SEED = path.join(FIXTURES, "seed", "service_deployment.yaml");

interface RegistryEntry {
  replica_id: string;
  service: string;
  node: string;
  http_endpoint: string;
  capabilities: Record<string, string>[];
}

async function registry(url: string): Promise<RegistryEntry[]> {
  return ((await (await fetch(`${url}/registry`)).json()) as { replicas: RegistryEntry[] }).replicas;
}

test("the seed's YAML deploys: replicas, strategy, queue size and GPUs as the file says", async (t) => {
  const up = await startCli(
    t,
    [
      "up",
      SEED,
      "--port",
      "0",
      "--grpc-port",
      "0",
      "--node-name",
      "node-storage-01",
      "--node-cpus",
      "16",
      "--node-memory-mb",
      "65536",
      "--node-gpus",
      "1",
    ],
    {},
    120_000,
  );
  const url = up.ready.url!;
  const entries: RegistryEntry[] = await waitFor(
    "4 replicas registered",
    async () => {
      const r = await registry(url);
      return r.length === 4 ? r : (undefined as unknown as RegistryEntry[]);
    },
    60_000,
  );
  const byService = (s: string) =>
    entries
      .filter((e) => e.service === s)
      .map((e) => e.replica_id)
      .sort();
  assert.deepEqual(byService("kv_service"), ["kv_service-0", "kv_service-1"]);
  assert.deepEqual(byService("llm_service"), ["llm_service-0"]);
  assert.deepEqual(byService("memory_service"), ["memory_service-0"]);
  assert.ok(entries.every((e) => e.node === "node-storage-01"));

  // What each replica process really runs, from its own /workers endpoint.
  const workersOf = async (id: string) => {
    const e = entries.find((x) => x.replica_id === id)!;
    return (
      (await (await fetch(`${e.http_endpoint}/workers`)).json()) as {
        capabilities: { strategy: string; queue_size: number; workers: { warm: number } }[];
      }
    ).capabilities;
  };
  const kv = await workersOf("kv_service-0");
  assert.ok(
    kv.every((c) => c.strategy === "multi" && c.queue_size === 2000),
    JSON.stringify(kv),
  );
  const llm = await workersOf("llm_service-0");
  assert.ok(
    llm.every((c) => c.strategy === "pool" && c.queue_size === 100),
    JSON.stringify(llm),
  );
  const mem = await workersOf("memory_service-0");
  assert.ok(
    mem.every((c) => c.strategy === "async" && c.queue_size === 1000),
    JSON.stringify(mem),
  );

  const client = new Client({ apiServer: url });
  t.after(() => client.close());
  const call = async (service: string, method: string, ...args: unknown[]) =>
    ((await client.infer({ service, method }, { args: JSON.stringify(args) })) as { result: unknown }).result;
  assert.equal(await call("kv_service", "set", "k", 42), true);
  assert.equal(await call("llm_service", "process", "hi"), "completion of: hi");
  assert.equal(await call("memory_service", "remember", "x"), 1);
  // kv runs in worker threads (multi), llm has GPU 0, memory runs on the replica's own thread.
  const kvWhere = (await call("kv_service", "whereAmI")) as { thread: number; service: string };
  assert.ok(kvWhere.thread > 0, "kv_service answers from a worker thread");
  assert.equal(kvWhere.service, "kv_service");
  const llmWhere = (await call("llm_service", "whereAmI")) as { gpus: string; thread: number };
  assert.equal(llmWhere.gpus, "0");
  const memWhere = (await call("memory_service", "whereAmI")) as { thread: number };
  assert.equal(memWhere.thread, 0);
});

test("on a node the file does not name, kv_service is unschedulable with the reason; the others run", async (t) => {
  const up = await startCli(
    t,
    ["up", SEED, "--port", "0", "--grpc-port", "0", "--node-cpus", "16", "--node-memory-mb", "65536", "--node-gpus", "1"],
    {},
    120_000,
  );
  assert.equal(
    up.ready.services && (up.ready.services as unknown as Record<string, { status: string; reason: string }>).kv_service!.status,
    "unschedulable",
  );
  const status = (await (await fetch(`${up.ready.url}/api/deployment`)).json()) as {
    services: Record<string, { placement: string; reason?: string }>;
  };
  assert.match(status.services.kv_service!.reason!, /target_nodes \[node-storage-01, node-storage-02\] does not include this node 'local'/);
  assert.equal(status.services.llm_service!.placement, "scheduled");
});

test("a deployment that does not fit the node is refused with the numbers, nothing started", async () => {
  const err = await run(process.execPath, [BIN, "up", SEED, "--port", "0", "--node-name", "node-storage-01", "--node-cpus", "2"]).catch(
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal((err as { code: number }).code, 2);
  assert.match((err as { stderr: string }).stderr, /cpu_cores: the services need 16 in all .* has 2/);
});

test("anyserve validate: a good file passes; a bad one lists every problem, exit 2", async () => {
  const ok = await run(process.execPath, [BIN, "validate", SEED]);
  assert.match(ok.stdout, /valid — 3 service\(s\)/);
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-cfg-"));
  const bad = path.join(dir, "bad.yaml");
  writeFileSync(bad, "services:\n  a:\n    app: x.ts\n    deployment: {replicas: -1, threding_strategy: multi}\n");
  const err = (await run(process.execPath, [BIN, "validate", bad]).catch((e: unknown) => e)) as { code: number; stderr: string };
  assert.equal(err.code, 2);
  assert.match(err.stderr, /deployment\.replicas/);
  assert.match(err.stderr, /did you mean 'threading_strategy'/);
});
