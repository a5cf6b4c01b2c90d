// Issue 25 item 5: requests with capability values nobody serves, each one different, must not grow
// the API server. A real API server process is flooded over REST (X-Capability values, invented
// X-Capability-<Key> names, /v2/models/{name}) and gRPC (model names), with metrics off, then with
// `--unmatched delegate` and metrics on (each request goes to a replica and back); the heap after a
// full GC (read through the inspector) must come back to what it was after a warm-up of the same
// traffic. Before the fix every distinct value left ~310 bytes behind (12.5 MB for 40,000) (route cache, and with
// delegation a metrics series and a circuit per value).
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Pool } from "undici";
import { encodeProtoRequest } from "../../src/protocol/proto-codec.js";
import { INSPECT_ENV, inspect } from "../helpers/inspect.js";
import { FIXTURES, registryIds, startCli, startReplicaProc, waitFor } from "../helpers/processes.js";

const BODY = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1], data: [1] }] });
/** What the flood may leave behind, in all: bounded caches filling up, code warming up. */
const ALLOWED_GROWTH = 2 * 1024 * 1024;

type Send = (i: number) => Promise<number>;

/** Runs `send(i)` for i in [from, to) with 32 at a time; answers the statuses seen, counted. */
async function flood(from: number, to: number, send: Send): Promise<Record<number, number>> {
  const statuses: Record<number, number> = {};
  let next = from;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < to) {
        const status = await send(next++);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  return statuses;
}

function restSender(url: string): { send: Send; close: () => Promise<void> } {
  const pool = new Pool(url, { connections: 16 });
  const send: Send = async (i) => {
    // Three kinds of made-up routing data, in turn.
    const kind = i % 3;
    const res = await pool.request({
      method: "POST",
      path: kind === 2 ? `/v2/models/model-${i}-${Math.random().toString(36).slice(2)}/infer` : "/infer",
      headers: {
        "content-type": "application/json",
        ...(kind === 0 ? { "x-capability-type": `type-${i}-${Math.random().toString(36).slice(2)}` } : {}),
        ...(kind === 1 ? { [`x-capability-k${i}`]: `v${i}` } : {}),
      },
      body: BODY,
    });
    await res.body.dump();
    return res.statusCode;
  };
  return { send, close: () => pool.close() };
}

function grpcSender(target: string): { send: Send; close: () => void } {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const id = (b: Buffer): Buffer => b;
  const send: Send = (i) =>
    new Promise((resolve) => {
      const body = encodeProtoRequest({ modelName: `grpc-model-${i}-${Math.random().toString(36).slice(2)}`, inputs: [] });
      client.makeUnaryRequest("/inference.GRPCInferenceService/ModelInfer", id, id, body, new grpc.Metadata(), (err) =>
        resolve(err ? 1000 + err.code : 200),
      );
    });
  return { send, close: () => client.close() };
}

test("a flood of distinct unmatched capabilities leaves the API server's heap where it was (--no-metrics; REST and gRPC)", async (t) => {
  const api = await startCli(t, ["api-server", "--port", "0", "--grpc-port", "0", "--no-metrics"], INSPECT_ENV);
  const heap = await inspect(api);
  t.after(() => heap.close());
  const rest = restSender(api.ready.url!);
  const rpc = grpcSender(api.ready.grpc!);
  t.after(async () => {
    rpc.close();
    await rest.close();
  });

  const both = (i: number) => (i % 4 === 3 ? rpc.send(i) : rest.send(i));
  // Warm-up: the same traffic, so code and bounded caches are as warm as they will get.
  assert.deepEqual(await flood(0, 4_000, both), { 404: 3_000, [1000 + grpc.status.NOT_FOUND]: 1_000 });
  const before = await heap.heapAfterGc();
  const statuses = await flood(4_000, 20_000, both);
  assert.deepEqual(statuses, { 404: 12_000, [1000 + grpc.status.NOT_FOUND]: 4_000 });
  const after = await heap.heapAfterGc();
  const grown = after.heapUsed - before.heapUsed;
  assert.ok(
    grown < ALLOWED_GROWTH,
    `heap grew ${(grown / 1e6).toFixed(1)} MB over 16,000 distinct unmatched requests (${(before.heapUsed / 1e6).toFixed(1)} → ${(after.heapUsed / 1e6).toFixed(1)} MB)`,
  );
});

test("with --unmatched delegate and metrics, distinct values delegated to a replica and back leave no series, circuits or routes behind", async (t) => {
  const api = await startCli(t, ["api-server", "--port", "0", "--unmatched", "delegate"], INSPECT_ENV);
  await startReplicaProc(t, api.ready.url!, path.join(FIXTURES, "routing_app.ts:app"), ["--replica-id", "flood-1"]);
  await waitFor("the replica registered", async () => (await registryIds(api.ready.url!)).length === 1);
  const heap = await inspect(api);
  t.after(() => heap.close());
  const rest = restSender(api.ready.url!);
  t.after(() => rest.close());

  assert.deepEqual(await flood(0, 2_000, rest.send), { 404: 2_000 });
  const before = await heap.heapAfterGc();
  assert.deepEqual(await flood(2_000, 10_000, rest.send), { 404: 8_000 });
  const after = await heap.heapAfterGc();
  const grown = after.heapUsed - before.heapUsed;
  assert.ok(grown < ALLOWED_GROWTH, `heap grew ${(grown / 1e6).toFixed(1)} MB over 8,000 distinct delegated requests`);
  // The metrics hold one "unmatched" series, not one per value.
  const metrics = await (await fetch(`${api.ready.url}/metrics`)).text();
  const series = metrics.split("\n").filter((l) => l.startsWith("anyserve_gateway_requests_total{"));
  assert.ok(series.length <= 4, series.join("\n"));
  assert.ok(
    series.every((l) => l.includes('capability="unmatched"')),
    series.join("\n"),
  );
});
