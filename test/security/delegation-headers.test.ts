// Delegation headers from outside do not steer routing (issue 25 #6): against API server processes
// (node:http with gRPC, and the fast ingress) and replica processes, a client's
// `X-Delegation-Depth: 5` or `X-Delegated-From: <the only replica>` — with or without a forged
// `X-Anyserve-Replica` — is served as if it were not there, over REST and gRPC, at the API server
// and at a replica; a 5,000-character `X-Delegated-From` is never echoed. Delegation between
// replicas itself (which shows the replica's secret) is test/e2e/delegation.test.ts.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Client } from "../../src/sdk/client.js";
import { Cleanups, FIXTURES, type Proc, registryIds, startCli, startReplicaProc, waitFor } from "../helpers/processes.js";

const APP = `${path.join(FIXTURES, "test_app.ts")}:app`;
const BODY = JSON.stringify({ inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] });
const LONG = `${"r".repeat(100)},`.repeat(50);

function infer(url: string, type: string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${url}/infer`, {
    method: "POST",
    headers: { "x-capability-type": type, "content-type": "application/json", ...headers },
    body: BODY,
  });
}

describe("client-sent delegation headers are ignored (API server and replica processes)", () => {
  const hooks = new Cleanups();
  let api: Proc;
  let fast: Proc;
  const replicas: Record<string, Proc> = {};

  before(async () => {
    [api, fast] = await Promise.all([
      startCli(hooks, ["api-server", "--port", "0", "--grpc-port", "0"]),
      startCli(hooks, ["api-server", "--port", "0", "--fast-ingress"]),
    ]);
    await Promise.all(
      [
        ["solo", api],
        ["solo-fast", fast],
      ].map(async ([id, server]) => {
        replicas[id as string] = await startReplicaProc(hooks, (server as Proc).ready.url!, APP, ["--replica-id", id as string]);
      }),
    );
    await waitFor(
      "both registered",
      async () => (await registryIds(api.ready.url!)).length === 1 && (await registryIds(fast.ready.url!)).length === 1,
    );
  });
  after(() => hooks.run());

  const steering: Record<string, string>[] = [
    { "x-delegation-depth": "5" },
    { "x-delegated-from": "solo,solo-fast" },
    { "x-delegated-from": "solo,solo-fast", "x-delegation-depth": "1", "x-anyserve-replica": "solo forged-secret-of-enough-length" },
    { "x-delegated-from": LONG, "x-delegation-depth": "64" },
  ];

  test("REST at the API server (node:http and fast ingress): served by the only replica, whatever the headers say", async () => {
    for (const [server, id] of [
      [api, "solo"],
      [fast, "solo-fast"],
    ] as const) {
      for (const headers of steering) {
        const res = await infer(server.ready.url!, "whoami", headers);
        assert.equal(res.status, 200, `${server.ready.url} ${JSON.stringify(headers).slice(0, 80)}`);
        assert.match(await res.text(), new RegExp(id));
      }
    }
  });

  test("an unserved capability is 404, not 508, and a long X-Delegated-From is not echoed", async () => {
    for (const server of [api, fast]) {
      const res = await infer(server.ready.url!, "nobody", { "x-delegated-from": LONG, "x-delegation-depth": "1" });
      const text = await res.text();
      assert.equal(res.status, 404, text.slice(0, 200));
      assert.equal((JSON.parse(text) as { code: string }).code, "NO_MATCHING_CAPABILITY");
      assert.ok(!text.includes("rrrrrrrrrr"), "the header's value is not in the answer");
      assert.ok(text.length < 1_000, `${text.length} bytes`);
    }
  });

  test("gRPC metadata at the API server, and REST and gRPC at a replica, are not steered either", async () => {
    const grpc = new Client({ apiServer: api.ready.grpc!, protocol: "grpc" });
    const atReplica = new Client({ endpoint: replicas.solo!.ready.http! });
    const atReplicaGrpc = new Client({ endpoint: replicas.solo!.ready.grpc!, protocol: "grpc" });
    try {
      for (const headers of steering) {
        for (const client of [grpc, atReplica, atReplicaGrpc]) {
          assert.equal(await client.infer({ type: "whoami" }, { x: 1 }, { headers }), "solo", JSON.stringify(headers).slice(0, 80));
        }
      }
    } finally {
      await Promise.all([grpc.close(), atReplica.close(), atReplicaGrpc.close()]);
    }
  });
});
