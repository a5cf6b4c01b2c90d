// Issue 24.3: the seed's own HTTP clients. `POST /infer/json` and `/infer/stream` with the seed's
// body form (`contents: {bytes_contents: [...]}`, every typed contents field, no model_name) reach
// a replica process through the API server and are answered in the same form.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Cleanups, FIXTURES, registryIds, startApiServerProc, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";

const hooks = new Cleanups();
let api: Proc;

/** One input of every typed contents field, as the seed's client writes them. */
const SEED_INPUTS = [
  { name: "text", datatype: "BYTES", shape: [2], contents: { bytes_contents: ["hello", "wörld"] } },
  { name: "i32", datatype: "INT32", shape: [3], contents: { int_contents: [1, -2, 2147483647] } },
  { name: "i64", datatype: "INT64", shape: [1], contents: { int64_contents: [-9007199254740991] } },
  { name: "u32", datatype: "UINT32", shape: [1], contents: { uint_contents: [4294967295] } },
  { name: "u64", datatype: "UINT64", shape: [1], contents: { uint64_contents: [9007199254740991] } },
  { name: "f32", datatype: "FP32", shape: [2], contents: { fp32_contents: [1.5, -0.25] } },
  { name: "f64", datatype: "FP64", shape: [1], contents: { fp64_contents: [Math.PI] } },
  { name: "flag", datatype: "BOOL", shape: [2], contents: { bool_contents: [true, false] } },
];

interface SeedAnswer {
  model_name: string;
  model_version: string;
  id: string;
  outputs: { name: string; datatype: string; shape: number[]; contents: Record<string, unknown[]>; data?: unknown }[];
}

function post(route: string, body: unknown, type = "echo"): Promise<Response> {
  return fetch(`${api.ready.url}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-capability-type": type },
    body: JSON.stringify(body),
  });
}

describe("the seed's HTTP clients through the API server", () => {
  before(async () => {
    api = await startApiServerProc(hooks);
    await startReplicaProc(hooks, api.ready.url!, path.join(FIXTURES, "oip_app.ts:app"), ["--replica-id", "seed-target"]);
    await waitFor("the replica registered", async () => (await registryIds(api.ready.url!)).length === 1);
  });
  after(() => hooks.run());

  test("POST /infer/json with every contents field and no model_name → 200, answered with contents", async () => {
    const res = await post("/infer/json", { id: "seed-1", inputs: SEED_INPUTS });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const body = JSON.parse(text) as SeedAnswer;
    assert.equal(body.id, "seed-1");
    assert.equal(body.model_name, "echo");
    assert.equal(body.model_version, "");
    assert.deepEqual(
      body.outputs.map(({ name, datatype, shape, contents }) => ({ name, datatype, shape, contents })),
      SEED_INPUTS,
    );
    assert.ok(
      body.outputs.every((o) => o.data === undefined),
      "no OIP data field in the seed's answer",
    );
  });

  test("datatype and shape may be left out: they follow from the contents field", async () => {
    const res = await post("/infer/json", { inputs: [{ name: "text", contents: { bytes_contents: ["a", "b", "c"] } }] });
    assert.equal(res.status, 200);
    const body = (await res.json()) as SeedAnswer;
    assert.deepEqual(body.outputs[0], { name: "text", datatype: "BYTES", shape: [3], contents: { bytes_contents: ["a", "b", "c"] } });
  });

  test("OIP's data form on the same route is still answered with data", async () => {
    const res = await post("/infer/json", { inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["oip"] }] });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { outputs: { data: unknown; contents?: unknown }[] };
    assert.deepEqual(body.outputs[0]!.data, ["oip"]);
    assert.equal(body.outputs[0]!.contents, undefined);
  });

  test("a contents field that does not match the datatype → 400 INVALID_TENSOR naming both", async () => {
    const res = await post("/infer/json", { inputs: [{ name: "x", datatype: "FP32", shape: [1], contents: { int_contents: [1] } }] });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; error: string };
    assert.equal(body.code, "INVALID_TENSOR");
    assert.match(body.error, /input 'x': FP32 data must be in fp32_contents, got int_contents/);
    const short = await post("/infer/json", { inputs: [{ name: "y", datatype: "INT32", shape: [4], contents: { int_contents: [1] } }] });
    assert.equal(short.status, 400);
    assert.match(((await short.json()) as { error: string }).error, /input 'y': expected 4 INT32 elements for shape \[4\], got 1/);
  });

  test("POST /infer/stream with the seed's body → SSE of data: <the seed's JSON> per chunk", async () => {
    const res = await post("/infer/stream", { inputs: [SEED_INPUTS[0]!, SEED_INPUTS[1]!] }, "echo_stream");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    const events = (await res.text())
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map((l) => JSON.parse(l.slice(6)) as SeedAnswer);
    assert.equal(events.length, 2);
    for (const e of events) {
      assert.equal(e.model_name, "echo_stream");
      assert.deepEqual(e.outputs[0]!.contents, { bytes_contents: ["hello", "wörld"] });
      assert.deepEqual(e.outputs[1]!.contents, { int_contents: [1, -2, 2147483647] });
    }
  });
});
