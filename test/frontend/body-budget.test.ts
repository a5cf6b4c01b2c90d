// The API server's budget for request bodies held at once (api_server.max_buffered_mb): each body
// is bounded by the body limit, and all of them together by the budget. A request whose body would
// pass it is 503 SERVER_OVERLOADED (Retry-After) without being read; a body is held until its
// answer is done, and given back whatever happened to the request. Both ingresses, an API server
// and a replica in this process on real sockets; the uploads that hold the budget are raw sockets
// that send part of their body and wait.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { test } from "node:test";
import { apiServerSchema } from "../../src/config/api-server.js";
import { DEFAULT_MAX_BUFFERED_BYTES } from "../../src/gateway/api-server.js";
import { Client } from "../../src/sdk/client.js";
import { waitFor } from "../helpers/processes.js";
import { apiServer, replica } from "../sdk/helpers.js";

const BUDGET = 1024 * 1024;

/** A valid inference request for capability `{type: who}` whose body is about `bytes` long. */
function bodyOf(bytes: number): string {
  const head = '{"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"data":["';
  const tail = '"]}]}';
  return head + "a".repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
}

const post = (url: string, body: string) =>
  fetch(`${url}/infer`, { method: "POST", headers: { "x-capability-type": "who", "content-type": "application/json" }, body });

/** `anyserve_gateway_buffered_body_bytes` now. */
async function buffered(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^anyserve_gateway_buffered_body_bytes (\d+)$/m.exec(text);
  assert.ok(m, "the gauge is exported");
  return Number(m[1]);
}

/** An upload that declares `declared` bytes (or goes chunked), sends `sent` of them and waits. */
function stalledUpload(url: string, declared: number | "chunked", sent: number): Socket {
  const port = Number(new URL(url).port);
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  const framing = declared === "chunked" ? "Transfer-Encoding: chunked" : `Content-Length: ${declared}`;
  socket.write(`POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: who\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`);
  const part = "a".repeat(sent);
  socket.write(declared === "chunked" ? `${sent.toString(16)}\r\n${part}\r\n` : part);
  return socket;
}

for (const fastIngress of [false, true]) {
  const ingress = fastIngress ? "fast ingress" : "node:http";
  test(`${ingress}: bodies past api_server.max_buffered_mb together are 503 SERVER_OVERLOADED, and the budget comes back`, async (t) => {
    const s = await apiServer(t, { maxBufferedBytes: BUDGET, fastIngress, grpcPort: 0 });
    await replica(t, s.url, `budget-${fastIngress ? "fast" : "node"}`);
    await waitFor("the replica registered", () => s.registry.size === 1);
    // 700 KB declared and held (only 1 KB of it sent): 400 KB more would pass the 1 MiB budget.
    const held = stalledUpload(s.url, 700_000, 1_000);
    t.after(() => held.destroy());
    let heldAnswer = "";
    held.on("data", (c: Buffer) => {
      heldAnswer += c.toString("latin1");
    });
    await waitFor("the held upload's 700 KB counted", async () => (await buffered(s.url)) === 700_000);
    const refused = await post(s.url, bodyOf(400_000));
    assert.equal(refused.status, 503);
    const e = (await refused.json()) as { code: string; error: string };
    assert.equal(e.code, "SERVER_OVERLOADED");
    assert.match(e.error, /max_buffered_mb/);
    assert.ok(refused.headers.get("retry-after"), "Retry-After is set");
    assert.equal(heldAnswer, "", "the held upload itself was taken, not answered");
    assert.equal((await post(s.url, bodyOf(10_000))).status, 200, "a body that fits beside the held one is served");
    if (!fastIngress) {
      // gRPC shares the budget (counted once grpc-js has read the message).
      const grpcClient = new Client({ apiServer: s.grpcAddress!, protocol: "grpc", retry: false });
      try {
        await assert.rejects(grpcClient.infer({ type: "who" }, { x: "a".repeat(400_000) }), { code: "SERVER_OVERLOADED" });
        assert.equal(await grpcClient.infer({ type: "who" }, { x: "a".repeat(10_000) }), "budget-node");
      } finally {
        await grpcClient.close();
      }
    }

    // A chunked body takes from the budget as it arrives: refused once it passes.
    const chunked = stalledUpload(s.url, "chunked", 400_000);
    t.after(() => chunked.destroy());
    const answer = await new Promise<string>((resolve) => {
      let text = "";
      chunked.on("data", (c: Buffer) => {
        text += c.toString("latin1");
        if (text.includes("\r\n\r\n")) resolve(text);
      });
      chunked.on("close", () => resolve(text));
    });
    assert.match(answer, /^HTTP\/1\.1 503 /);
    assert.match(answer, /SERVER_OVERLOADED/);

    // The held upload's client leaves: its bytes come back, and so did every refused and every
    // served one's — a body just under the whole budget is served (its bytes are given back when
    // its answer is done: the next one may find them still held for a moment).
    held.destroy();
    chunked.destroy();
    await waitFor("every byte given back", async () => (await buffered(s.url)) === 0);
    assert.equal((await post(s.url, bodyOf(BUDGET - 32 * 1024))).status, 200, "a body of nearly the whole budget is served");
    await waitFor("its bytes given back too", async () => (await buffered(s.url)) === 0);
  });
}

test("a replica bounds its own (performance.max_buffered_mb): its REST port, and the bodies the gateway frames to it", async (t) => {
  const s = await apiServer(t);
  const r = await replica(t, s.url, "budget-replica", { config: { app: "who", performance: { max_buffered_mb: 1 } } });
  await waitFor("the replica registered", () => s.registry.size === 1);
  // 700 KB declared and held on the replica's own port.
  const held = stalledUpload(r.httpUrl, 700_000, 1_000);
  t.after(() => held.destroy());
  await waitFor("the held upload counted", async () => {
    const res = await post(r.httpUrl, bodyOf(400_000));
    if (res.status !== 503) return false;
    const e = (await res.json()) as { code: string; error: string };
    assert.equal(e.code, "SERVER_OVERLOADED");
    assert.match(e.error, /performance\.max_buffered_mb/);
    return true;
  });
  // Through the API server (its own budget is the default 1 GiB): the replica refuses the framed body.
  const via = await post(s.url, bodyOf(400_000));
  assert.equal(via.status, 503);
  assert.equal(((await via.json()) as { code: string }).code, "SERVER_OVERLOADED");
  assert.equal((await post(s.url, bodyOf(10_000))).status, 200, "a body that fits is served");
  held.destroy();
  await waitFor("the held bytes given back", async () => (await post(s.url, bodyOf(900_000))).status === 200);
});

test("an API server started without the setting takes the schema's default budget", () => {
  assert.equal(DEFAULT_MAX_BUFFERED_BYTES, apiServerSchema.parse({}).max_buffered_mb * 1024 * 1024);
});
