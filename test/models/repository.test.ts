// Issue 29.3: `anyserve serve DIR` serves a model repository in Triton's layout (versions, a
// config.yaml with batch size and version policy, a model.ts app alongside, a model.py app on
// Python workers with an instance_count) and answers the OIP
// repository extension: the index; load of a new version (control-plane token) that then serves;
// a failing reload that leaves the old version serving; unload that stops the model's replica
// process (its memory goes back to the machine).
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import { mlpModel, typedModel, unloadableModel, writeModel } from "../helpers/onnx-models.js";
import { Cleanups, startCli, waitFor, type Proc } from "../helpers/processes.js";

const hooks = new Cleanups();
const repo = mkdtempSync(path.join(tmpdir(), "anyserve-repo-"));
const TOKEN = "repo-test-control-token";
let up: Proc;

writeModel(repo, "mlp", "1", mlpModel("batch", 1));
writeFileSync(path.join(repo, "mlp", "config.yaml"), "max_batch_size: 8\nversion_policy: {latest: 1}\n");
writeModel(repo, "typed", "3", typedModel());
writeFileSync(
  path.join(repo, "typed", "model.ts"),
  'import { AnyServe } from "anyserve";\nexport const app = new AnyServe();\napp.model("greeter", (req) => "hello " + String(req.value("name")));\n',
);

mkdirSync(path.join(repo, "summarizer"));
writeFileSync(path.join(repo, "summarizer", "config.yaml"), "instance_count: 2\n");
/** A Python app in a model folder; `word` changes between loads, and each answer names its Python process. */
const pythonModel = (word: string) =>
  [
    "import os",
    "from anyserve import AnyServe",
    "app = AnyServe()",
    '@app.model("summarizer")',
    "def summarize(request):",
    '    text = request.inputs["text"].bytes_contents[0].decode()',
    `    return {"summary": "${word}: " + text.split()[0], "pid": os.getpid()}`,
    "",
  ].join("\n");
writeFileSync(path.join(repo, "summarizer", "model.py"), pythonModel("first"));

const x = Float32Array.from([0.5, -1, 2, 0.25]);

async function expected(file: string): Promise<number[]> {
  const s = await ort.InferenceSession.create(file);
  try {
    const out = await s.run({ x: new ort.Tensor("float32", x, [1, 4]) });
    return [...(out.y!.data as Float32Array)];
  } finally {
    await s.release();
  }
}

async function infer(model: string): Promise<{ status: number; body: { outputs?: { data: number[] }[]; error?: string; code?: string } }> {
  const res = await fetch(`${up.ready.url}/v2/models/${model}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [...x] }] }),
  });
  return { status: res.status, body: (await res.json()) as never };
}

async function summarize(): Promise<{ status: number; summary?: string; pid?: number; error?: string }> {
  const res = await fetch(`${up.ready.url}/v2/models/summarizer/infer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["anyserve serves models"] }] }),
  });
  const body = (await res.json()) as { outputs?: { name: string; data: [string | number] }[]; error?: string };
  const out = Object.fromEntries((body.outputs ?? []).map((o) => [o.name, o.data[0]]));
  return { status: res.status, summary: out.summary as string, pid: out.pid as number, ...(body.error ? { error: body.error } : {}) };
}

async function index(): Promise<{ name: string; version?: string; state: string; reason?: string }[]> {
  const res = await fetch(`${up.ready.url}/v2/repository/index`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: "{}",
  });
  assert.equal(res.status, 200);
  return (await res.json()) as never;
}

const repoCall = (model: string, action: "load" | "unload", token: string | undefined = TOKEN) =>
  fetch(`${up.ready.url}/v2/repository/models/${model}/${action}`, {
    method: "POST",
    headers: token ? { authorization: `Bearer ${token}` } : {},
    body: "{}",
  });

describe("model repository: anyserve serve DIR", () => {
  before(async () => {
    up = await startCli(hooks, ["serve", repo, "--port", "0", "--grpc-port", "0", "--token", TOKEN], {}, 120_000);
    await waitFor("every model ready", async () => (await index()).every((e) => e.state === "READY"), 60_000);
  });
  after(async () => {
    await hooks.run();
    rmSync(repo, { recursive: true, force: true });
  });

  test("the index lists every version on disk with its state; models and the model.ts app answer", async () => {
    assert.deepEqual(await index(), [
      { name: "mlp", version: "1", state: "READY" },
      { name: "summarizer", state: "READY" },
      { name: "typed", version: "3", state: "READY" },
      { name: "typed", state: "READY" },
    ]);
    const r = await infer("mlp");
    assert.equal(r.status, 200, r.body.error);
    assert.deepEqual(r.body.outputs![0]!.data, await expected(path.join(repo, "mlp", "1", "model.onnx")));
    const meta = (await (await fetch(`${up.ready.url}/v2/models/mlp`)).json()) as { versions: string[]; parameters: unknown };
    assert.deepEqual(meta.versions, ["1"]);
    const hello = await fetch(`${up.ready.url}/v2/models/greeter/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: [{ name: "name", datatype: "BYTES", shape: [1], data: ["ada"] }] }),
    });
    assert.deepEqual(((await hello.json()) as { outputs: { data: string[] }[] }).outputs[0]!.data, ["hello ada"]);
  });

  test("load needs the control-plane token; a new version then serves, the old one leaves (latest 1)", async () => {
    const v2 = writeModel(repo, "mlp", "2", mlpModel("batch", 2));
    assert.equal((await repoCall("mlp", "load", "")).status, 401);
    // A bad name: 401 without the token (before the path is looked at), 400 with it.
    for (const bad of ["%E0%A4%A", ".hidden", "a%2F..%2Fb"]) {
      assert.equal((await repoCall(bad, "load", "")).status, 401, bad);
      const refused = await repoCall(bad, "load");
      assert.equal(refused.status, 400, bad);
      assert.equal(((await refused.json()) as { code: string }).code, "INVALID_REQUEST", bad);
    }
    const res = await repoCall("mlp", "load");
    assert.equal(res.status, 200, await res.text());
    const want = await expected(v2);
    await waitFor("version 2 answers alone", async () => {
      const meta = (await (await fetch(`${up.ready.url}/v2/models/mlp`)).json()) as { versions?: string[] };
      return meta.versions?.[0] === "2" && (await infer("mlp")).body.outputs?.[0]?.data.join() === want.join();
    });
    assert.deepEqual(await index(), [
      { name: "mlp", version: "1", state: "UNAVAILABLE", reason: "not in the version policy" },
      { name: "mlp", version: "2", state: "READY" },
      { name: "summarizer", state: "READY" },
      { name: "typed", version: "3", state: "READY" },
      { name: "typed", state: "READY" },
    ]);
  });

  test("a reload that fails (a broken model.onnx) is refused and the old version keeps serving", async () => {
    const before = (await infer("mlp")).body.outputs![0]!.data;
    writeModel(repo, "mlp", "3", Buffer.from("this is not an onnx model"));
    const res = await repoCall("mlp", "load");
    const body = (await res.json()) as { code: string; error: string };
    assert.equal(res.status, 400);
    assert.equal(body.code, "CONFIG_INVALID");
    assert.match(body.error, /model 'mlp' cannot be loaded: .*mlp.3.model\.onnx is not an ONNX model/s);
    const after = await infer("mlp");
    assert.equal(after.status, 200);
    assert.deepEqual(after.body.outputs![0]!.data, before);
    rmSync(path.join(repo, "mlp", "3"), { recursive: true });
  });

  test("a reload whose model.onnx reads fine but ONNX Runtime refuses is refused too; the old version keeps serving", async () => {
    const before = (await infer("mlp")).body.outputs![0]!.data;
    writeModel(repo, "mlp", "3", unloadableModel());
    const res = await repoCall("mlp", "load");
    const body = (await res.json()) as { code: string; error: string };
    assert.equal(res.status, 400);
    assert.equal(body.code, "CONFIG_INVALID");
    assert.match(body.error, /model 'mlp' cannot be loaded: .*mlp.3.model\.onnx: ONNX Runtime cannot load it: .*NoSuchOperatorAnywhere/s);
    const after = await infer("mlp");
    assert.equal(after.status, 200);
    assert.deepEqual(after.body.outputs![0]!.data, before);
    rmSync(path.join(repo, "mlp", "3"), { recursive: true });
  });

  test("model.py: a Python app served on instance_count Python worker processes; a load serves the changed file", async () => {
    const first = await summarize();
    assert.equal(first.status, 200, first.error);
    assert.equal(first.summary, "first: anyserve");
    // instance_count: 2 is two Python processes (strategy multi), both answering.
    const pids = new Set<number>();
    await waitFor("both Python workers answered", async () => {
      const answers = await Promise.all(Array.from({ length: 8 }, () => summarize()));
      for (const a of answers) pids.add(a.pid!);
      return pids.size === 2;
    });
    writeFileSync(path.join(repo, "summarizer", "model.py"), pythonModel("second"));
    const res = await repoCall("summarizer", "load");
    assert.equal(res.status, 200, await res.text());
    const after = await summarize();
    assert.equal(after.summary, "second: anyserve");
    assert.ok(!pids.has(after.pid!), "served by new Python processes");
    assert.deepEqual(
      (await index()).find((e) => e.name === "summarizer"),
      { name: "summarizer", state: "READY" },
    );
  });

  test("a model.py that does not import is refused by load, naming the Python error; the old one keeps serving", async () => {
    writeFileSync(path.join(repo, "summarizer", "model.py"), "import no_such_module_here\n");
    const res = await repoCall("summarizer", "load");
    const body = (await res.json()) as { code: string; error: string };
    assert.equal(res.status, 400);
    assert.equal(body.code, "CONFIG_INVALID");
    assert.match(body.error, /model 'summarizer' cannot be loaded: .*model\.py.*no_such_module_here/s);
    assert.equal((await summarize()).summary, "second: anyserve");
    writeFileSync(path.join(repo, "summarizer", "model.py"), pythonModel("second"));
  });

  test("config.yaml's python: a load runs model.py under the interpreter the file names now", async () => {
    // Two "environments": interpreters that mark the process they start, as two virtualenvs would differ.
    for (const env of ["env-a", "env-b"]) {
      mkdirSync(path.join(repo, "summarizer", env), { recursive: true });
      const file = path.join(repo, "summarizer", env, "python");
      writeFileSync(file, `#!/bin/sh\nMODEL_ENV=${env} exec python3 "$@"\n`);
      chmodSync(file, 0o755);
    }
    writeFileSync(
      path.join(repo, "summarizer", "model.py"),
      pythonModel("second").replace('"second: " + ', 'os.environ.get("MODEL_ENV", "none") + ": " + '),
    );
    for (const env of ["env-a", "env-b"]) {
      writeFileSync(path.join(repo, "summarizer", "config.yaml"), `instance_count: 2\npython: ./${env}/python\n`);
      const res = await repoCall("summarizer", "load");
      assert.equal(res.status, 200, await res.text());
      assert.equal((await summarize()).summary, `${env}: anyserve`);
    }
    writeFileSync(path.join(repo, "summarizer", "config.yaml"), "instance_count: 2\npython: ./no-such-env/python\n");
    const res = await repoCall("summarizer", "load");
    assert.equal(res.status, 400);
    assert.equal((await summarize()).summary, "env-b: anyserve", "the old interpreter's workers keep serving");
    writeFileSync(path.join(repo, "summarizer", "config.yaml"), "instance_count: 2\n");
  });

  test("unload stops the model's replica process; the model is then not found, and loads again", async () => {
    const deployment = async () =>
      (
        (await (await fetch(`${up.ready.url}/api/deployment`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
          services: Record<string, { replicas: { pid: number | null }[] }>;
        }
      ).services;
    const pid = (await deployment())["mlp-v2"]!.replicas[0]!.pid!;
    assert.ok(pid > 0);
    const res = await repoCall("mlp", "unload");
    assert.equal(res.status, 200, await res.text());
    assert.equal((await deployment())["mlp-v2"], undefined);
    await waitFor("the replica process exited", () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    await waitFor("mlp is not served", async () => (await infer("mlp")).status === 404);
    assert.equal((await index()).find((e) => e.name === "mlp" && e.version === "2")?.reason, "unloaded");
    assert.equal((await repoCall("mlp", "unload")).status, 404);
    assert.equal((await repoCall("mlp", "load")).status, 200);
    assert.equal((await infer("mlp")).status, 200);
  });
});
