// The seed's kv_service from its YAML under `anyserve up` (issue 24 #2): `multi` × 4 threads and 2
// replicas. Before, each of its 3 methods ran 4 threads of its own (12 per replica) and `set` then
// `get` answered null; now the methods share the replica's 4 threads, a call runs on the thread
// that owns its first argument, and the SDK's service proxy sends that argument as the affinity
// key, so under consistent_hash a key stays on one replica too.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parse, stringify } from "yaml";
import { Client } from "../../src/sdk/client.js";
import { callService } from "../../src/sdk/service.js";
import { infer, workersRoute } from "../execution/helpers.js";
import { FIXTURES, startCli, waitFor } from "../helpers/processes.js";

const SEED = path.join(FIXTURES, "seed", "service_deployment.yaml");

interface Replica {
  replica_id: string;
  service: string;
  http_endpoint: string;
}

test("the seed's kv_service (multi ×4, 2 replicas): 4 threads per replica for its 3 methods; set then get on 100 keys answers what was set", async (t) => {
  // kv_service exactly as the seed's file has it, except the balancing its replica's log asks for
  // (test/execution/shared-workers.test.ts checks that warning) and the app's path made absolute.
  const seed = parse(readFileSync(SEED, "utf8")) as { services: Record<string, { app: string; deployment: Record<string, unknown> }> };
  const kv = seed.services.kv_service!;
  assert.deepEqual([kv.deployment.threading_strategy, kv.deployment.thread_count, kv.deployment.replicas], ["multi", 4, 2]);
  kv.app = path.join(FIXTURES, "seed", kv.app.replace(/^\.\//, ""));
  kv.deployment.load_balancing = "consistent_hash";
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-seed-kv-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "kv.yaml");
  writeFileSync(file, stringify({ services: { kv_service: kv } }));

  const up = await startCli(
    t,
    ["up", file, "--port", "0", "--grpc-port", "0", "--node-name", "node-storage-01", "--node-cpus", "16", "--node-memory-mb", "65536"],
    {},
    120_000,
  );
  const url = up.ready.url!;
  const replicas: Replica[] = await waitFor(
    "2 replicas of kv_service",
    async () => {
      const r = ((await (await fetch(`${url}/registry`)).json()) as { replicas: Replica[] }).replicas;
      return r.length === 2 ? r : (undefined as unknown as Replica[]);
    },
    60_000,
  );

  // Workers, from each replica's own /workers: 4 threads in all, each serving every method.
  for (const r of replicas) {
    const w = (await workersRoute(r.http_endpoint, "GET", "/workers")).body as {
      capabilities: { capability: Record<string, string>; workers: { warm: number } }[];
      workers: { strategy: string; threads: number; workers: { warm: number } };
    };
    assert.deepEqual([w.workers.strategy, w.workers.threads, w.workers.workers.warm], ["multi", 4, 4], JSON.stringify(w.workers));
    assert.deepEqual(
      w.capabilities.map((c) => [c.capability.method, c.workers.warm]),
      [
        ["set", 4],
        ["get", 4],
        ["whereAmI", 4],
      ],
    );
  }

  const client = new Client({ apiServer: url });
  t.after(() => client.close());
  const service = callService(client, "kv_service");
  const keys = Array.from({ length: 100 }, (_, i) => `key-${i}`);
  for (const [i, k] of keys.entries()) assert.equal(await service.set!(k, { i }), true);
  const got = await Promise.all(keys.map((k) => service.get!(k)));
  assert.deepEqual(
    got,
    keys.map((_, i) => ({ i })),
  );
  // Where each key lives (whereAmI(key) goes where set(key) went): both replicas, 4 threads each.
  const homes = (await Promise.all(keys.map((k) => service.whereAmI!(k)))) as { replica: string; thread: number }[];
  const threadsOf = (id: string) => new Set(homes.filter((h) => h.replica === id).map((h) => h.thread));
  assert.deepEqual(
    replicas.map((r) => threadsOf(r.replica_id).size),
    [4, 4],
    "100 keys spread over the 4 threads of each replica",
  );

  // On one replica, without any header (curl, another language): the key is read from the body.
  const one = replicas[0]!.http_endpoint;
  const call = async (method: string, ...args: unknown[]) => {
    const reply = await infer(one, { service: "kv_service", method }, { args: JSON.stringify(args) });
    assert.equal(reply.status, 200, `${reply.code} ${reply.error}`);
    return (reply.value as { result: unknown }).result;
  };
  for (const k of keys) assert.equal(await call("set", `direct-${k}`, k), true);
  for (const k of keys) assert.equal(await call("get", `direct-${k}`), k);
});
