// The Python SDK's own tests (test/python/, standard-library unittest: the seed's app, capability,
// context, stream, object store and SAGE service behaviours, the codecs, the worker protocol) run
// here, so `npm test` (and CI) runs them; and the two SDKs are checked against each other: objects
// written by one are read by the other, and bodies encoded by one are decoded by the other for
// every datatype, FP16 and BF16 included, over JSON, JSON with binary tensors and protobuf.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { ObjectStore } from "../src/objects/store.js";
import { decodeResponse, encodeRequest } from "../src/protocol/codec.js";
import type { InferRequest, Tensor, WireFormat } from "../src/protocol/types.js";
import { valueToTensor } from "../src/protocol/values.js";
import { ROOT } from "./helpers/processes.js";

const PYTHON = process.env.ANYSERVE_PYTHON ?? "python3";
const HERE = path.join(ROOT, "test", "python");
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("the Python SDK's unittest suite passes (python3 -m unittest discover test/python)", async () => {
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(PYTHON, ["-m", "unittest", "discover", "-s", HERE, "-t", HERE], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.on("close", (c) => resolve({ code: c, output }));
  });
  assert.equal(code, 0, output);
  assert.match(output, /Ran \d+ tests/);
  assert.match(output, /\nOK/);
});

async function interop(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
  const child = execFile(PYTHON, [path.join(HERE, "interop.py")], { maxBuffer: 64 << 20 });
  child.stdin!.end(JSON.stringify(cmd));
  const out = await new Promise<string>((resolve, reject) => {
    let text = "";
    let err = "";
    child.stdout!.on("data", (c: Buffer) => (text += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    child.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`interop.py exited ${code}: ${err}`))));
  });
  return JSON.parse(out) as Record<string, unknown>;
}

test("objects written by the TypeScript store are read by the Python store, and the other way round", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "anyserve-py-objects-"));
  dirs.push(dir);
  const ts = new ObjectStore({ dir, owner: { replicaId: "ts-replica", url: "http://127.0.0.1:9" } });
  const refs = [
    await ts.create(Buffer.from([0, 255, 1])),
    await ts.create({ from: "ts", list: [1, 2], nested: { a: null } }),
    await ts.create(new Float32Array([1.5, -2])),
    await ts.create("text", { contentType: "text/plain", key: "custom_key-1" }),
  ];
  const read = await interop({ op: "read", dir, refs: refs.map(String) });
  assert.deepEqual(read.values, [{ b64: "AP8B" }, { from: "ts", list: [1, 2], nested: { a: null } }, [1.5, -2], "text"]);
  assert.deepEqual(read.types, ["application/octet-stream", "application/json", "application/x-anyserve-array; dtype=FP32", "text/plain"]);

  const written = (await interop({ op: "write", dir, owner: { replicaId: "py-replica", url: "http://127.0.0.1:10" } })).refs as string[];
  const values = await Promise.all(written.map((r) => ts.getValue(r)));
  assert.deepEqual(values[0], Buffer.from([0, 255, 0x70, 0x79]));
  assert.deepEqual(values[1], { from: "python", n: [1, 2.5], ok: true, none: null });
  assert.equal(values[2], "héllo");
  const info = await ts.stat(written[1]!);
  assert.equal(info.owner, "py-replica");
  assert.equal(info.ref.toString(), written[1]);
  ts.close();
});

/** Three elements of every datatype, as the TypeScript value converter writes them. */
function allDatatypes(): Tensor[] {
  const t = (name: string, values: unknown, dt: Parameters<typeof valueToTensor>[2]) => valueToTensor(name, values, dt);
  return [
    t("bool", [true, false, true], "BOOL"),
    t("uint8", [0, 7, 255], "UINT8"),
    t("uint16", [0, 65535, 3], "UINT16"),
    t("uint32", [0, 4294967295, 5], "UINT32"),
    t("uint64", [0n, 18446744073709551615n, 9n], "UINT64"),
    t("int8", [-128, 0, 127], "INT8"),
    t("int16", [-32768, 1, 32767], "INT16"),
    t("int32", [-2147483648, 0, 2147483647], "INT32"),
    t("int64", [-9223372036854775808n, 0n, 9223372036854775807n], "INT64"),
    t("fp16", [0.5, -2, 65504], "FP16"),
    t("fp32", [0.25, -1.5, 3], "FP32"),
    t("fp64", [Math.PI, -0, 1e300], "FP64"),
    t("bytes", [Buffer.from([0, 255]), Buffer.from("text"), Buffer.alloc(0)], "BYTES"),
    t("bf16", [1.5, -2, 0.0078125], "BF16"),
  ];
}

for (const [label, format, binary] of [
  ["JSON with binary tensors", "json", true],
  ["protobuf", "protobuf", false],
] as const) {
  test(`every datatype crosses TypeScript → Python → TypeScript unchanged (${label})`, async () => {
    const inputs = allDatatypes();
    const req: InferRequest = { id: "r-1", inputs };
    if (format === "json") req.parameters = { binary_data_output: true };
    const enc = encodeRequest(req, format as WireFormat, { binary });
    const out = (await interop({
      op: "echo",
      body: enc.body.toString("base64"),
      ct: enc.contentType,
      hl: enc.headerLength ?? null,
      f: format,
    })) as { body: string; ct: string; hl: number | null };
    const res = decodeResponse(Buffer.from(out.body, "base64"), {
      contentType: out.ct,
      ...(out.hl !== null ? { headerLength: out.hl } : {}),
    });
    assert.equal(res.id, "r-1");
    for (const want of inputs) {
      const got = res.outputs.find((o) => o.name === want.name);
      assert.ok(got, `output ${want.name}`);
      assert.equal(got.datatype, want.datatype);
      assert.deepEqual(got.shape, want.shape);
      assert.deepEqual(got.data, want.data, want.name);
    }
  });
}

test("the SDK loads under the oldest Python it supports, when that interpreter is here (3.9)", async (t) => {
  const candidates = [process.env.ANYSERVE_PYTHON39, path.join(os.homedir(), ".pyenv/versions/3.9.18/bin/python"), "python3.9"].filter(
    (p): p is string => Boolean(p),
  );
  for (const py of candidates) {
    const ok = await promisify(execFile)(py, ["-c", "import sys; assert sys.version_info[:2] == (3, 9)"]).then(
      () => true,
      () => false,
    );
    if (!ok) continue;
    const { stdout } = await promisify(execFile)(py, ["-m", "anyserve.describe", path.join(ROOT, "examples/python_demo/chat_app.py:app")], {
      env: { ...process.env, PYTHONPATH: path.join(ROOT, "python") },
    });
    assert.equal(JSON.parse(stdout.trim()).ok, true, stdout);
    return;
  }
  t.skip("no Python 3.9 here");
});
