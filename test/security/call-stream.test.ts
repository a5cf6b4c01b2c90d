// ctx.callStream from a worker process, from the outside: an API server and replicas that require
// the inference token, a callee replica streaming (callee_app.ts), and two callers whose handlers
// run in worker processes holding no token — a Node `process`-strategy replica (caller_app.ts)
// and a Python replica (python/stream_caller.py). Their streaming calls go through their replica
// (CALL_STREAM, docs/worker-protocol.md): every chunk in order, an upstream error with its code,
// an early break or the job's end cancelling the upstream handler, and a slow reader holding the
// upstream stream back instead of the replica buffering it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Client } from "../../src/sdk/client.js";
import { Cleanups, FIXTURES, type Proc, startCli, startReplicaProc, waitFor } from "../helpers/processes.js";

const CONTROL = "control-token-for-the-call-stream-test";
const INFER = "inference-token-for-the-call-stream-test";
const TOKENS = ["--token", CONTROL, "--inference-token", INFER];

describe("ctx.callStream from worker processes, through the replica, under an inference token", () => {
  const hooks = new Cleanups();
  let api: Proc;
  let callee: Client;
  const callers: { name: string; client: Client }[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), "anyserve-call-stream-"));

  before(async () => {
    api = await startCli(hooks, ["api-server", "--port", "0", ...TOKENS, "--read-token", CONTROL]);
    const url = api.ready.url!;
    const [calleeProc, nodeProc, pyProc] = await Promise.all([
      startReplicaProc(hooks, url, `${path.join(FIXTURES, "callee_app.ts")}:app`, [
        "--replica-id",
        "callee",
        "--threading-strategy",
        "single",
        ...TOKENS,
      ]),
      startReplicaProc(hooks, url, `${path.join(FIXTURES, "caller_app.ts")}:app`, [
        ...["--replica-id", "caller-node", "--threading-strategy", "process", "--thread-count", "1"],
        ...TOKENS,
      ]),
      startReplicaProc(hooks, url, `${path.join(FIXTURES, "python", "stream_caller.py")}:app`, [
        "--replica-id",
        "caller-python",
        ...TOKENS,
      ]),
    ]);
    await waitFor(
      "the replicas in the registry",
      async () =>
        ((await (await fetch(`${url}/registry`, { headers: { authorization: `Bearer ${CONTROL}` } })).json()) as { total: number })
          .total === 3,
    );
    callee = new Client({ endpoint: calleeProc.ready.http!, inferenceToken: INFER });
    callers.push(
      { name: "node process", client: new Client({ endpoint: nodeProc.ready.http!, inferenceToken: INFER }) },
      { name: "python", client: new Client({ endpoint: pyProc.ready.http!, inferenceToken: INFER }) },
    );
  });
  after(async () => {
    await Promise.all([callee, ...callers.map((c) => c.client)].map((c) => c?.close()));
    await hooks.run();
    rmSync(dir, { recursive: true, force: true });
  });

  const endless = async (): Promise<{ running: number; stopped: number }> =>
    JSON.parse(String(await callee.infer({ type: "endless_state" }, {}))) as { running: number; stopped: number };

  /** `run` starts one upstream `endless` stream and leaves it; the callee's handler must see its abort and stop. */
  async function assertUpstreamStops(run: () => Promise<unknown>): Promise<unknown> {
    const before = await endless();
    const out = await run();
    await waitFor("the upstream handler to stop", async () => {
      const now = await endless();
      return now.running === 0 && now.stopped === before.stopped + 1;
    });
    return out;
  }

  async function collect(client: Client, type: string, inputs: Record<string, unknown>): Promise<unknown[]> {
    const got: unknown[] = [];
    for await (const chunk of client.stream({ type }, inputs)) got.push(chunk);
    return got;
  }

  /** The relaying capabilities of each caller: Python has a sync (generator) and an async (async generator) one. */
  const relays = (name: string): string[] => (name === "python" ? ["relay_any", "arelay_any"] : ["relay_any"]);
  const takers = (name: string): string[] => (name === "python" ? ["take_two", "atake_two"] : ["take_two"]);

  test("every chunk of the upstream stream arrives, in order", async () => {
    const want = Array.from({ length: 300 }, (_, i) => i);
    for (const { name, client } of callers) {
      for (const relay of relays(name))
        assert.deepEqual(await collect(client, relay, { type: "numbers", n: 300 }), want, `${name} ${relay}`);
    }
  });

  test("an upstream error reaches the caller's client with its code, after the chunks before it", async () => {
    for (const { name, client } of callers) {
      for (const relay of relays(name)) {
        const got: unknown[] = [];
        await assert.rejects(
          async () => {
            for await (const chunk of client.stream({ type: relay }, { type: "failing_stream", n: 0 })) got.push(chunk);
          },
          (err: { code?: string; message?: string }) => {
            assert.equal(err.code, "INVALID_PARAMETER", `${name} ${relay}: ${err.message}`);
            assert.match(String(err.message), /failing_stream fails after its first chunk/);
            return true;
          },
        );
        assert.deepEqual(got, ["one"], `${name} ${relay}`);
      }
    }
  });

  test("breaking out of the loop early cancels the upstream call: its handler sees the abort and stops", async () => {
    for (const { name, client } of callers) {
      for (const taker of takers(name)) {
        assert.deepEqual(
          JSON.parse(String(await assertUpstreamStops(() => client.infer({ type: taker }, {})))),
          [0, 1],
          `${name} ${taker}`,
        );
      }
    }
  });

  test("a stream the handler left unfinished is cancelled when its job ends", async () => {
    for (const { name, client } of callers) {
      assert.equal(await assertUpstreamStops(() => client.infer({ type: "take_one_and_leave" }, {})), "0", name);
    }
  });

  test("a handler reading slowly holds the upstream stream back: the replica pulls about a window, not the stream", async () => {
    const n = 300; // 64 KiB chunks: 19 MiB in all
    for (const { name, client } of callers) {
      const go = path.join(dir, `go-${name.replace(" ", "-")}`);
      const answer = client.infer({ type: "slow_flood" }, { n, go });
      try {
        // The handler took one chunk and waits for `go`: what `flood` produced meanwhile settles.
        let last = -1;
        let same = 0;
        const produced = await waitFor(
          "flood to stop producing",
          async () => {
            const now = Number(await callee.infer({ type: "flood_count" }, {}));
            same = now === last && now > 0 ? same + 1 : 0;
            last = now;
            return same >= 10 ? now : 0;
          },
          20_000,
          100,
        );
        // The windows on the way (the replica's relay, the direct hop, the callee's own stream)
        // hold a few 64 KiB chunks each (22 in all, measured); without back-pressure the relay
        // pulls all `n` while the handler waits.
        assert.ok(produced < 64, `${name}: flood produced ${produced} of ${n} chunks while the handler held its first`);
      } finally {
        writeFileSync(go, "");
      }
      assert.deepEqual(JSON.parse(String(await answer)), { count: n, ordered: true }, name);
    }
  });
});
