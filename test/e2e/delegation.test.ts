// Delegation at the replica and cross-replica calls (ctx.call), with real processes.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Client } from "../../src/sdk/client.js";
import { Cleanups, DEMO, FIXTURES, registryIds, startApiServerProc, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";

describe("delegation and ctx.call", () => {
  const hooks = new Cleanups();
  let api: Proc;
  let caller: Proc;
  before(async () => {
    api = await startApiServerProc(hooks, ["--unmatched", "delegate"]);
    [caller] = await Promise.all([
      startReplicaProc(hooks, api.ready.url!, path.join(FIXTURES, "caller_app.ts:app"), ["--replica-id", "caller"]),
      startReplicaProc(hooks, api.ready.url!, path.join(FIXTURES, "callee_app.ts:app"), ["--replica-id", "callee"]),
      startReplicaProc(hooks, api.ready.url!, path.join(DEMO, "heavy_app.ts:app"), ["--replica-id", "heavy"]),
    ]);
    await waitFor("registered", async () => (await registryIds(api.ready.url!)).length === 3);
  });
  after(() => hooks.run());

  test("a request sent to the wrong replica is answered by the right one (REST and gRPC)", async () => {
    const wrongRest = new Client({ endpoint: caller.ready.http! });
    const wrongGrpc = new Client({ endpoint: caller.ready.grpc!, protocol: "grpc" });
    try {
      const viaRest = (await wrongRest.infer({ type: "heavy" }, { ms: 5 })) as { replica: string };
      assert.equal(viaRest.replica, "heavy");
      const viaGrpc = (await wrongGrpc.infer({ type: "heavy" }, { ms: 5 })) as { replica: string };
      assert.equal(viaGrpc.replica, "heavy");
      const tokens: unknown[] = [];
      for await (const t of wrongRest.stream({ type: "tokens" }, { text: "a b" })) tokens.push(t);
      assert.deepEqual(tokens, ["a", "b"]);
    } finally {
      await Promise.all([wrongRest.close(), wrongGrpc.close()]);
    }
  });

  test("a capability nobody has ends with 404 naming it and the replicas it went through, never a loop", async () => {
    const client = new Client({ apiServer: api.ready.url! });
    try {
      await assert.rejects(client.infer({ type: "unicorn" }, { x: 1 }), (err: { code: string; message: string }) => {
        assert.equal(err.code, "NO_MATCHING_CAPABILITY");
        assert.match(err.message, /\{type=unicorn\}/);
        assert.match(err.message, /delegated by (caller|callee|heavy)/);
        return true;
      });
    } finally {
      await client.close();
    }
  });

  for (const protocol of ["rest", "grpc"] as const) {
    test(`ctx.call from chat to embed inside one request (${protocol} ingress)`, async () => {
      const client = new Client({ apiServer: protocol === "rest" ? api.ready.url! : api.ready.grpc!, protocol });
      try {
        const res = (await client.infer({ type: "chat" }, { text: "hello" })) as { dims: number; embedded_by: string; caller: string };
        assert.deepEqual(res, { dims: 4, embedded_by: "callee", caller: "caller" });
      } finally {
        await client.close();
      }
    });
  }

  test("ctx.callStream relays another capability's stream", async () => {
    const client = new Client({ apiServer: api.ready.url! });
    try {
      const got: unknown[] = [];
      for await (const t of client.stream({ type: "relay_stream" }, { text: "x y" })) got.push(t);
      assert.deepEqual(got, ["relayed:x", "relayed:y"]);
    } finally {
      await client.close();
    }
  });

  test("a caller deadline of 200 ms fails a 2 s callee with 504 at about 200 ms; the callee sees its abort", async () => {
    const client = new Client({ apiServer: api.ready.url! });
    try {
      const before = Number(await client.infer({ type: "abort_count" }, { x: 1 }));
      const started = Date.now();
      await assert.rejects(client.infer({ type: "impatient" }, { x: 1 }, { timeout: 200 }), { code: "DEADLINE_EXCEEDED" });
      const took = Date.now() - started;
      assert.ok(took >= 180 && took < 1000, `failed after ${took} ms`);
      await waitFor("callee abort seen", async () => Number(await client.infer({ type: "abort_count" }, { x: 1 })) === before + 1, 5_000);
    } finally {
      await client.close();
    }
  });
});
