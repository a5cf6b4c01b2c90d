// Issue 24 item 8, the status side: every registered replica shows in the management API under a
// service — replicas registered without one (the seed's registration shape, or startReplica without
// `service`) together as "(none)", their requests counted there and not as unmatched.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startApiServer } from "../../src/gateway/api-server.js";
import { UNNAMED_SERVICE } from "../../src/gateway/status.js";
import { startReplica } from "../../src/replica/replica.js";
import { AnyServe } from "../../src/sdk/app.js";
import { Client } from "../../src/sdk/client.js";
import { silentLogger } from "../../src/util/logger.js";

test("a replica registered without a service is listed under (none), with its requests; nothing is unmatched", async (t) => {
  const api = await startApiServer({ port: 0, logger: silentLogger });
  t.after(() => api.close());
  const app = new AnyServe();
  app.capability({ type: "hello" }, () => "hi");
  const replica = await startReplica({ app, apiServer: api.url, replicaId: "loose-1", logger: silentLogger, heartbeatIntervalMs: 1_000 });
  t.after(() => replica.stop());
  const client = new Client({ apiServer: api.url });
  t.after(() => client.close());
  for (let i = 0; i < 5; i++) assert.equal(await client.infer({ type: "hello" }, { x: 1 }), "hi");

  const services = (
    (await (await fetch(`${api.url}/api/services`)).json()) as {
      services: { name: string; replicas: { replica_id: string; service: string | null }[]; stats: { requests: number } }[];
    }
  ).services;
  assert.deepEqual(
    services.map((s) => [s.name, s.replicas.map((r) => r.replica_id), s.stats.requests]),
    [[UNNAMED_SERVICE, ["loose-1"], 5]],
  );
  const one = await fetch(`${api.url}/api/services/${encodeURIComponent(UNNAMED_SERVICE)}`);
  assert.equal(one.status, 200);
  const stats = (await (await fetch(`${api.url}/api/stats`)).json()) as { requests: number; unmatched: number };
  assert.deepEqual([stats.requests, stats.unmatched], [5, 0]);
});
