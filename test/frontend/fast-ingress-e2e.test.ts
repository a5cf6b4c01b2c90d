// The fast ingress in front of a real gateway → replica path: answers equal to the node:http
// ingress's, SSE, the SDK client, a client leaving cancels the replica's handler; and the opt-in
// wiring (`--fast-ingress`, `api_server.fast_ingress`).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { apiServerSchema } from "../../src/config/schema.js";
import { startApiServer, type RunningApiServer } from "../../src/gateway/api-server.js";
import { startReplica } from "../../src/replica/replica.js";
import { AnyServe } from "../../src/sdk/app.js";
import { Client } from "../../src/sdk/client.js";
import { silentLogger } from "../../src/util/logger.js";
import { req, Wire } from "../helpers/http-wire.js";
import { Cleanups, startApiServerProc, waitFor } from "../helpers/processes.js";

let slowStarted = 0;
let slowAborted = 0;
const app = new AnyServe();
app.capability({ type: "echo" }, (r) => ({ outputs: r.inputs.map((t) => ({ ...t })) }));
app.model("m", (r) => `model saw ${String(r.value("text"))}`);
app.capability({ type: "tokens" }, async function* (r) {
  for (const word of String(r.value("text")).split(" ")) yield word;
});
app.capability({ type: "slow" }, async (_r, ctx) => {
  slowStarted++;
  try {
    await sleep(10_000, undefined, { signal: ctx.signal });
  } catch {
    slowAborted++;
  }
  return "done";
});

const hooks = new Cleanups();
let plain: RunningApiServer;
let fast: RunningApiServer;
const text = (t: string) => JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [t] }] });

before(async () => {
  [plain, fast] = (await Promise.all(
    [false, true].map(async (fastIngress) => {
      const s = await startApiServer({ port: 0, logger: silentLogger, fastIngress });
      hooks.after(() => s.close());
      const r = await startReplica({ app, apiServer: s.url, logger: silentLogger, heartbeatIntervalMs: 1000 });
      hooks.after(() => r.stop());
      await waitFor("registered", () => s.registry.size === 1);
      return s;
    }),
  )) as [RunningApiServer, RunningApiServer];
});
after(() => hooks.run());

describe("fast ingress, full path", () => {
  const cases: [string, Record<string, string>, string][] = [
    ["/infer", { "x-capability-type": "echo", "x-request-id": "same-id" }, text("hi")],
    ["/infer/json", { "x-capability-type": "echo" }, text("json")],
    ["/v2/models/m/infer", {}, text("hello")],
    ["/infer", { "x-capability-type": "nothing-has-this" }, text("x")],
    ["/infer", {}, text("no capability")],
    ["/v2/models/m/infer", {}, "{not json"],
  ];
  for (const [path, headers, body] of cases) {
    test(`POST ${path} ${JSON.stringify(headers)}: the same answer as the node:http ingress`, async () => {
      const [a, b] = await Promise.all(
        [plain, fast].map(async (s) => {
          const res = await fetch(`${s.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
          return {
            status: res.status,
            body: await res.text(),
            type: res.headers.get("content-type"),
            length: res.headers.get("content-length"),
            id: res.headers.get("x-request-id"),
            connection: res.headers.get("connection"),
          };
        }),
      );
      if (headers["x-request-id"] === undefined) {
        assert.equal(typeof a!.id === typeof b!.id, true);
        a!.id = b!.id = null;
      }
      assert.deepEqual(b, a);
    });
  }

  test("GETs and SSE through the fast port (handed over or relayed) answer like the node:http port", async () => {
    for (const path of ["/v2/health/ready", "/v2/models/m", "/registry"]) {
      const [a, b] = await Promise.all([plain, fast].map(async (s) => (await fetch(`${s.url}${path}`)).status));
      assert.equal(b, a, path);
    }
    const res = await fetch(`${fast.url}/infer/stream`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-capability-type": "tokens" },
      body: text("one two three"),
    });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const events = (await res.text())
      .split("\n\n")
      .filter(Boolean)
      .map((e) => JSON.parse(e.slice(6)).outputs[0].data[0]);
    assert.deepEqual(events, ["one", "two", "three"]);
  });

  test("the SDK client over the fast ingress: infer and stream", async () => {
    const client = new Client({ apiServer: fast.url });
    try {
      assert.equal(await client.infer({ model: "m" }, { text: "sdk" }), "model saw sdk");
      const words: unknown[] = [];
      for await (const w of client.stream({ type: "tokens" }, { text: "a b" })) words.push(w);
      assert.deepEqual(words, ["a", "b"]);
    } finally {
      await client.close();
    }
  });

  test("a client leaving mid-request: the replica's handler sees its signal fire", async () => {
    const [started, aborted] = [slowStarted, slowAborted];
    const w = await Wire.open(Number(new URL(fast.url).port));
    w.write(req("POST", "/infer", ["X-Capability-Type: slow", "Content-Type: application/json"], text("x")));
    await waitFor("the handler running", () => slowStarted === started + 1);
    w.destroy();
    await waitFor("the handler's abort", () => slowAborted === aborted + 1, 5_000);
  });
});

describe("opt-in wiring", () => {
  test("api_server.fast_ingress: false by default, true when set", () => {
    assert.equal(apiServerSchema.parse({}).fast_ingress, false);
    assert.equal(apiServerSchema.parse({ fast_ingress: true }).fast_ingress, true);
  });

  test("`anyserve api-server --fast-ingress` serves both kinds of route", async (t) => {
    const api = await startApiServerProc(t, ["--fast-ingress"]);
    const url = api.ready.url!;
    assert.equal((await fetch(`${url}/v2/health/live`)).status, 200);
    const res = await fetch(`${url}/infer`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-capability-type": "none" },
      body: text("x"),
    });
    assert.deepEqual([res.status, ((await res.json()) as { code: string }).code], [404, "NO_MATCHING_CAPABILITY"]);
  });
});
