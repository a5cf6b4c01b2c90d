// The bad-input catalogue (malformed bodies, headers, tensors, limits and registrations, as the
// design's reliability list has them) against a real API server + replica: each case gets its
// status and code, and the processes stay up.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpcjs from "@grpc/grpc-js";
import { protoTypes } from "../../src/protocol/proto-codec.js";
import { Client } from "../../src/sdk/client.js";
import { Cleanups, FIXTURES, registryIds, startCli, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";
import { post, rawRequest } from "../helpers/raw-http.js";

const hooks = new Cleanups();
let api: Proc;
let port: number;
const ECHO = "X-Capability-Type: echo";
const JSON_CT = "Content-Type: application/json";
const tensor = (t: Record<string, unknown>) => JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1], data: [1], ...t }] });

interface Case {
  row: string;
  name: string;
  parts: (string | Buffer)[];
  status: number;
  code?: string;
  gapMs?: number;
}

const LIMIT = 1024 * 1024; // --max-body-mb 1

const cases: Case[] = [
  { row: "1", name: "truncated JSON", parts: post("/infer", "{", [ECHO, JSON_CT]), status: 400, code: "INVALID_JSON" },
  { row: "1", name: "empty body with application/json", parts: post("/infer", "", [ECHO, JSON_CT]), status: 400, code: "INVALID_JSON" },
  {
    row: "2",
    name: "text/plain",
    parts: post("/infer", tensor({}), [ECHO, "Content-Type: text/plain"]),
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
  },
  {
    row: "3",
    name: "declared body over the limit",
    parts: [`POST /infer HTTP/1.1\r\nHost: x\r\n${ECHO}\r\n${JSON_CT}\r\nContent-Length: ${2 * LIMIT}\r\n\r\n`],
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  {
    row: "4",
    name: "chunked body crossing the limit",
    parts: [
      `POST /infer HTTP/1.1\r\nHost: x\r\n${ECHO}\r\n${JSON_CT}\r\nTransfer-Encoding: chunked\r\n\r\n`,
      ...Array.from({ length: 3 }, () => `80000\r\n${"a".repeat(0x80000)}\r\n`),
    ],
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  {
    row: "5",
    name: "gzip body",
    parts: post("/infer", "xx", [ECHO, JSON_CT, "Content-Encoding: gzip"]),
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
  },
  {
    row: "6",
    name: "__proto__ key",
    parts: post("/infer", '{"__proto__":{"x":1},"inputs":[]}', [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_JSON",
  },
  {
    row: "6",
    name: "constructor.prototype key",
    parts: post("/infer", '{"constructor":{"prototype":{"x":1}}}', [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_JSON",
  },
  {
    row: "7",
    name: "100k nested [",
    parts: post("/infer", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":${"[".repeat(100_000)}}]}`, [ECHO, JSON_CT]),
    status: 400,
  },
  { row: "8", name: "inputs missing", parts: post("/infer", "{}", [ECHO, JSON_CT]), status: 400, code: "INVALID_REQUEST" },
  { row: "8", name: "inputs not an array", parts: post("/infer", '{"inputs":5}', [ECHO, JSON_CT]), status: 400, code: "INVALID_REQUEST" },
  { row: "8", name: "inputs empty", parts: post("/infer", '{"inputs":[]}', [ECHO, JSON_CT]), status: 400, code: "INVALID_REQUEST" },
  {
    row: "9",
    name: "duplicate input name",
    parts: post(
      "/infer",
      JSON.stringify({
        inputs: [
          { name: "x", datatype: "FP32", shape: [1], data: [1] },
          { name: "x", datatype: "FP32", shape: [1], data: [1] },
        ],
      }),
      [ECHO, JSON_CT],
    ),
    status: 400,
    code: "INVALID_TENSOR",
  },
  {
    row: "9",
    name: "datatype FP128",
    parts: post("/infer", tensor({ datatype: "FP128" }), [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_TENSOR",
  },
  { row: "10", name: "shape [-1]", parts: post("/infer", tensor({ shape: [-1] }), [ECHO, JSON_CT]), status: 400, code: "INVALID_TENSOR" },
  { row: "10", name: "shape [1.5]", parts: post("/infer", tensor({ shape: [1.5] }), [ECHO, JSON_CT]), status: 400, code: "INVALID_TENSOR" },
  { row: "10", name: 'shape ["2"]', parts: post("/infer", tensor({ shape: ["2"] }), [ECHO, JSON_CT]), status: 400, code: "INVALID_TENSOR" },
  {
    row: "10",
    name: "dim > 2^53",
    parts: post("/infer", tensor({ shape: [2 ** 54] }), [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_TENSOR",
  },
  {
    row: "11",
    name: "len(data) ≠ ∏shape",
    parts: post("/infer", tensor({ shape: [3], data: [1, 2] }), [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_TENSOR",
  },
  {
    row: "12",
    name: "shape [1e9,1e9] with tiny data",
    parts: post("/infer", tensor({ shape: [1e9, 1e9], data: [1] }), [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_TENSOR",
  },
  {
    row: "13",
    name: '"abc" in FP32 data',
    parts: post("/infer", tensor({ data: ["abc"] }), [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_TENSOR",
  },
  {
    row: "13",
    name: "ragged nested data",
    parts: post("/infer", tensor({ shape: [2, 2], data: [[1, 2], [3]] }), [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_TENSOR",
  },
  {
    row: "13",
    name: '"NaN" string',
    parts: post("/infer", tensor({ data: ["NaN"] }), [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_TENSOR",
  },
  {
    row: "14",
    name: "parameter value an object",
    parts: post(
      "/infer",
      JSON.stringify({ parameters: { a: { b: 1 } }, inputs: [{ name: "x", datatype: "FP32", shape: [1], data: [1] }] }),
      [ECHO, JSON_CT],
    ),
    status: 400,
    code: "INVALID_PARAMETER",
  },
  {
    row: "14",
    name: "id not a string",
    parts: post("/infer", JSON.stringify({ id: 5, inputs: [{ name: "x", datatype: "FP32", shape: [1], data: [1] }] }), [ECHO, JSON_CT]),
    status: 400,
    code: "INVALID_REQUEST",
  },
  {
    row: "14",
    name: "id of 1 MB",
    parts: post("/infer", JSON.stringify({ id: "i".repeat(1000_000), inputs: [{ name: "x", datatype: "FP32", shape: [1], data: [1] }] }), [
      ECHO,
      JSON_CT,
    ]),
    status: 400,
    code: "INVALID_REQUEST",
  },
  {
    row: "15",
    name: "Inference-Header-Content-Length > body",
    parts: post("/infer", tensor({}), [ECHO, "Content-Type: application/octet-stream", "Inference-Header-Content-Length: 99999"]),
    status: 400,
    code: "INVALID_HEADER",
  },
  {
    row: "15",
    name: "Inference-Header-Content-Length not a number",
    parts: post("/infer", tensor({}), [ECHO, "Content-Type: application/octet-stream", "Inference-Header-Content-Length: abc"]),
    status: 400,
    code: "INVALID_HEADER",
  },
  { row: "16", name: "unknown model", parts: post("/v2/models/nope/infer", tensor({}), [JSON_CT]), status: 404, code: "MODEL_NOT_FOUND" },
  {
    row: "16",
    name: "unknown version",
    parts: post("/v2/models/nope/versions/3/infer", tensor({}), [JSON_CT]),
    status: 404,
    code: "MODEL_NOT_FOUND",
  },
  {
    row: "18",
    name: "model name ..%2F..%2Fetc",
    parts: post("/v2/models/..%2F..%2Fetc/infer", tensor({}), [JSON_CT]),
    status: 400,
    code: "INVALID_CAPABILITY",
  },
  {
    row: "18",
    name: "model name of 10 KB",
    parts: post(`/v2/models/${"m".repeat(10_000)}/infer`, tensor({}), [JSON_CT]),
    status: 400,
    code: "INVALID_CAPABILITY",
  },
  {
    row: "18",
    name: "model name with NUL",
    parts: post("/v2/models/a%00b/infer", tensor({}), [JSON_CT]),
    status: 400,
    code: "INVALID_CAPABILITY",
  },
  { row: "19", name: "GET /infer", parts: ["GET /infer HTTP/1.1\r\nHost: x\r\n\r\n"], status: 405, code: "METHOD_NOT_ALLOWED" },
  {
    row: "19",
    name: "DELETE /v2/health/ready",
    parts: ["DELETE /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"],
    status: 405,
    code: "METHOD_NOT_ALLOWED",
  },
  {
    row: "19",
    name: "GET on a model infer route",
    parts: ["GET /v2/models/demo/infer HTTP/1.1\r\nHost: x\r\n\r\n"],
    status: 405,
    code: "METHOD_NOT_ALLOWED",
  },
  {
    row: "24",
    name: "headers trickled 1 byte at a time",
    parts: "GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghijklmnopqrstuvwxyz".split(""),
    gapMs: 100,
    status: 408,
  },
  { row: "25", name: "a single 20 KB header", parts: [`GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`], status: 431 },
  { row: "26", name: "CR in a header value", parts: ["GET /v2 HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"], status: 400 },
  { row: "26", name: "obs-fold", parts: ["GET /v2 HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n"], status: 400 },
  { row: "26", name: "header with no colon", parts: ["GET /v2 HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"], status: 400 },
  {
    row: "27",
    name: "Content-Length + Transfer-Encoding",
    parts: [`POST /infer HTTP/1.1\r\nHost: x\r\n${ECHO}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    status: 400,
  },
  {
    row: "27",
    name: "two different Content-Lengths",
    parts: [`POST /infer HTTP/1.1\r\nHost: x\r\n${ECHO}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`],
    status: 400,
  },
  {
    row: "27",
    name: "Content-Length -1",
    parts: [`POST /infer HTTP/1.1\r\nHost: x\r\n${ECHO}\r\nContent-Length: -1\r\n\r\n`],
    status: 400,
  },
  { row: "—", name: "no capability header", parts: post("/infer", tensor({}), [JSON_CT]), status: 400, code: "MISSING_CAPABILITY" },
  {
    row: "—",
    name: "unknown capability",
    parts: post("/infer", tensor({}), ["X-Capability-Type: unknown", JSON_CT]),
    status: 404,
    code: "NO_MATCHING_CAPABILITY",
  },
];

describe("bad input at the API server", () => {
  before(async () => {
    api = await startCli(hooks, ["api-server", "--port", "0", "--grpc-port", "0", "--max-body-mb", "1"], {
      ANYSERVE_HEADERS_TIMEOUT_MS: "1000",
    });
    port = Number(new URL(api.ready.url!).port);
    await startReplicaProc(hooks, api.ready.url!, path.join(FIXTURES, "test_app.ts:app"));
    await waitFor("registered", async () => (await registryIds(api.ready.url!)).length === 1);
  });
  after(() => hooks.run());

  for (const c of cases) {
    test(`row ${c.row}: ${c.name} → ${c.status}${c.code ? ` ${c.code}` : ""}`, async () => {
      const res = await rawRequest(port, c.parts, { ...(c.gapMs ? { gapMs: c.gapMs } : {}) });
      assert.equal(res.status, c.status, res.body);
      if (c.code) {
        const body = JSON.parse(res.body) as { code: string; error: string };
        assert.equal(body.code, c.code, body.error);
        assert.ok(body.error.length > 10, "the message says what was wrong");
      }
      if (c.status === 405) assert.ok(res.headers.allow, "405 carries Allow");
      if (c.code === "PAYLOAD_TOO_LARGE") assert.equal(res.headers.connection, "close");
    });
  }

  test("row 28: an unsafe x-request-id is replaced by a generated one, never echoed", async () => {
    const evil = "a\u0000b";
    for (const id of [evil, "x".repeat(4096), "ok-id.1"]) {
      const res = await fetch(`${api.ready.url}/infer`, {
        method: "POST",
        headers: { "x-capability-type": "echo", "content-type": "application/json", "x-request-id": id.includes("\u0000") ? "a b;c" : id },
        body: tensor({}),
      });
      const echoed = res.headers.get("x-request-id")!;
      if (id === "ok-id.1") assert.equal(echoed, id);
      else assert.ok(echoed !== id && /^[\w.-]{1,128}$/.test(echoed), echoed);
    }
  });

  test("a matched but unreachable replica → 502 REPLICA_UNREACHABLE", async () => {
    const reg = await fetch(`${api.ready.url}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        replica_id: "ghost",
        endpoint: "127.0.0.1:9",
        http_endpoint: "http://127.0.0.1:9",
        capabilities: [{ type: "ghost" }],
        heartbeat_interval_ms: 60_000,
      }),
    });
    assert.equal(reg.status, 200);
    const res = await rawRequest(port, post("/infer", tensor({}), ["X-Capability-Type: ghost", JSON_CT]));
    assert.equal(res.status, 502);
    assert.equal((JSON.parse(res.body) as { code: string }).code, "REPLICA_UNREACHABLE");
    await fetch(`${api.ready.url}/unregister`, {
      method: "DELETE",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ replica_id: "ghost" }),
    });
  });

  describe("gRPC ingress", () => {
    const call = (
      method: string,
      body: Buffer,
      md: Record<string, string> = {},
      deadlineMs = 10_000,
    ): Promise<grpcjs.ServiceError | undefined> => {
      const client = new grpcjs.Client(api.ready.grpc!, grpcjs.credentials.createInsecure(), { "grpc.max_send_message_length": 8 * LIMIT });
      const metadata = new grpcjs.Metadata();
      for (const [k, v] of Object.entries(md)) metadata.set(k, v);
      return new Promise((resolve) => {
        client.makeUnaryRequest(
          `/inference.GRPCInferenceService/${method}`,
          (b: Buffer) => b,
          (b: Buffer) => b,
          body,
          metadata,
          { deadline: Date.now() + deadlineMs },
          (err) => {
            client.close();
            resolve(err ?? undefined);
          },
        );
      });
    };
    const request = (o: Record<string, unknown>): Buffer => {
      const t = protoTypes().request;
      return Buffer.from(t.encode(t.fromObject(o)).finish());
    };

    test("row 43: a message over the receive limit → RESOURCE_EXHAUSTED", async () => {
      const err = await call(
        "ModelInfer",
        request({ inputs: [{ name: "x", datatype: "UINT8", shape: [2 * LIMIT] }], raw_input_contents: [Buffer.alloc(2 * LIMIT)] }),
        { "x-capability-type": "echo" },
      );
      assert.equal(err?.code, grpcjs.status.RESOURCE_EXHAUSTED);
    });

    test("row 44: unknown method → UNIMPLEMENTED; garbage bytes → INVALID_ARGUMENT", async () => {
      assert.equal((await call("NoSuchMethod", Buffer.alloc(1)))?.code, grpcjs.status.UNIMPLEMENTED);
      const garbage = await call("ModelInfer", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]), { "x-capability-type": "echo" });
      assert.equal(garbage?.code, grpcjs.status.INVALID_ARGUMENT);
    });

    test("row 45: raw_input_contents count ≠ inputs → INVALID_ARGUMENT", async () => {
      const err = await call(
        "ModelInfer",
        request({
          inputs: [
            { name: "a", datatype: "UINT8", shape: [1] },
            { name: "b", datatype: "UINT8", shape: [1] },
          ],
          raw_input_contents: [Buffer.alloc(1)],
        }),
        { "x-capability-type": "echo" },
      );
      assert.equal(err?.code, grpcjs.status.INVALID_ARGUMENT);
    });

    test("row 46: a 1 ms deadline → DEADLINE_EXCEEDED; a cancelled call → CANCELLED", async () => {
      const body = request({
        inputs: [{ name: "ms", datatype: "FP64", shape: [1] }],
        raw_input_contents: [Buffer.from(new Float64Array([2000]).buffer)],
      });
      const late = await call("ModelInfer", body, { "x-capability-type": "slow" }, 1);
      assert.equal(late?.code, grpcjs.status.DEADLINE_EXCEEDED);
      const client = new Client({ apiServer: api.ready.grpc!, protocol: "grpc" });
      const controller = new AbortController();
      const pending = client.infer({ type: "slow" }, { ms: 5000 }, { signal: controller.signal });
      controller.abort();
      await assert.rejects(pending, { code: "CANCELLED" });
      await client.close();
    });
  });

  test("the API server and the replica are still up and serving", async () => {
    const client = new Client({ apiServer: api.ready.url! });
    try {
      assert.equal((await client.infer({ type: "whoami" }, { x: 1 })) !== undefined, true);
    } finally {
      await client.close();
    }
    assert.equal(api.child.exitCode, null);
  });
});
