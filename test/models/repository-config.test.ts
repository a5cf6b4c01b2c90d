// The pure parts of the model repository and the ONNX backend: config.yaml checks (each error names
// the file and the key), version policies, the name/version a file is served under, the execution
// provider (CUDA only with GPUs given and the CUDA provider installed), and a file that is not ONNX.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { batchesAlongFirstDim, executionProvider, modelIdentity } from "../../src/models/onnx-app.js";
import { readOnnxSignature } from "../../src/models/onnx-graph.js";
import { modelOfService, modelServices, readModelConfig, readRepositoryModel, servedVersions } from "../../src/models/repository.js";
import { mlpModel, writeModel } from "../helpers/onnx-models.js";

const root = mkdtempSync(path.join(tmpdir(), "anyserve-repo-config-"));
after(() => rmSync(root, { recursive: true, force: true }));

function configIn(name: string, text: string): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "config.yaml"), text);
  return dir;
}

test("config.yaml: every bad key or value is refused naming the file", () => {
  const cases: [string, RegExp][] = [
    ["max_batch_size: 0\n", /max_batch_size must be an integer 1-4096, got 0/],
    ["instance_count: two\n", /instance_count must be an integer 1-4096, got "two"/],
    ["version_policy: {latest: 0}\n", /version_policy must be \{latest: N\}/],
    ["version_policy: {latest: 1, all: true}\n", /version_policy must be/],
    ["batch: 3\n", /unknown key 'batch'/],
    ["python: 3\n", /python must be a path to an interpreter .*got 3/],
    ["inputs: [{name: x, datatype: FLOAT, shape: [1]}]\n", /'x'.*datatype must be an OIP datatype/],
    ["a: [\n", /not valid YAML/],
  ];
  for (const [i, [text, message]] of cases.entries()) {
    const dir = configIn(`bad${i}`, text);
    assert.throws(
      () => readModelConfig(dir),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "CONFIG_INVALID");
        assert.ok(err.message.includes(path.join(dir, "config.yaml")), err.message);
        assert.match(err.message, message);
        return true;
      },
    );
  }
  assert.deepEqual(readModelConfig(configIn("good", "max_batch_size: 8\nversion_policy: {specific: [1, 3]}\n")), {
    max_batch_size: 8,
    version_policy: { specific: [1, 3] },
  });
});

test("version policies: latest N (default 1), all, specific", () => {
  const on = ["1", "2", "3", "10"];
  assert.deepEqual(servedVersions(on, undefined), ["10"]);
  assert.deepEqual(servedVersions(on, { latest: 2 }), ["3", "10"]);
  assert.deepEqual(servedVersions(on, { all: true }), on);
  assert.deepEqual(servedVersions(on, { specific: ["1", "3", "7"] }), ["1", "3"]);
});

test("a repository model: versions in numeric order, services per served version on worker threads", () => {
  for (const v of ["2", "10", "1"]) writeModel(root, "mlp", v, mlpModel());
  writeFileSync(path.join(root, "mlp", "config.yaml"), "max_batch_size: 16\ninstance_count: 2\nversion_policy: {latest: 2}\n");
  const m = readRepositoryModel(root, "mlp");
  assert.deepEqual(m.versions, ["1", "2", "10"]);
  assert.deepEqual(m.served, ["2", "10"]);
  assert.deepEqual(modelServices(root, m), {
    "mlp-v2": {
      app: `onnx:${path.join(root, "mlp", "2", "model.onnx")}`,
      deployment: { threading_strategy: "multi", thread_count: 2 },
      performance: { batch_size: 16 },
    },
    "mlp-v10": {
      app: `onnx:${path.join(root, "mlp", "10", "model.onnx")}`,
      deployment: { threading_strategy: "multi", thread_count: 2 },
      performance: { batch_size: 16 },
    },
  });
  assert.equal(modelOfService(["mlp", "other"], "mlp-v10"), "mlp");
  assert.equal(modelOfService(["mlp"], "mlp-vx"), undefined);
  mkdirSync(path.join(root, "empty"));
  assert.throws(() => readRepositoryModel(root, "empty"), /no <version>\/model\.onnx and no model\.ts or model\.py/);
  assert.throws(() => readRepositoryModel(root, "absent"), { code: "MODEL_NOT_FOUND" });
});

test("an app in a model folder: model.py is a Python app service; model.py beside model.ts is refused naming both", () => {
  mkdirSync(path.join(root, "py"));
  writeFileSync(path.join(root, "py", "model.py"), "from anyserve import AnyServe\napp = AnyServe()\n");
  writeFileSync(path.join(root, "py", "config.yaml"), "instance_count: 3\n");
  const m = readRepositoryModel(root, "py");
  assert.equal(m.app, path.join(root, "py", "model.py"));
  assert.deepEqual(modelServices(root, m), {
    py: { app: path.join(root, "py", "model.py"), deployment: { threading_strategy: "multi", thread_count: 3 }, performance: {} },
  });
  // Its own interpreter: a path relative to the model's folder, or a command on PATH.
  writeFileSync(path.join(root, "py", "config.yaml"), "python: .venv/bin/python\n");
  assert.deepEqual(modelServices(root, readRepositoryModel(root, "py")).py!.deployment, {
    threading_strategy: "multi",
    thread_count: 1,
    python: path.join(root, "py", ".venv", "bin", "python"),
  });
  writeFileSync(path.join(root, "py", "config.yaml"), "python: python3\n");
  assert.equal((modelServices(root, readRepositoryModel(root, "py")).py!.deployment as { python?: string }).python, "python3");
  writeFileSync(path.join(root, "py", "model.ts"), "export const app = 1;\n");
  assert.throws(
    () => readRepositoryModel(root, "py"),
    (err: Error & { code?: string }) => err.code === "CONFIG_INVALID" && /both model\.ts and model\.py/.test(err.message),
  );
});

test("the name and version a file is served under; batching needs a dynamic first dimension everywhere", () => {
  assert.deepEqual(modelIdentity("/r/classifier/3/model.onnx"), { name: "classifier", version: "3" });
  assert.deepEqual(modelIdentity("/models/resnet.onnx"), { name: "resnet" });
  const sig = readOnnxSignature(writeModel(root, "fixed", "1", mlpModel(2)));
  assert.equal(batchesAlongFirstDim(sig), false);
  assert.equal(batchesAlongFirstDim(readOnnxSignature(path.join(root, "mlp", "1", "model.onnx"))), true);
});

test("execution provider: CPU without GPUs, and with GPUs but no CUDA provider installed (as here)", () => {
  const saved = process.env.CUDA_VISIBLE_DEVICES;
  try {
    process.env.CUDA_VISIBLE_DEVICES = "";
    assert.equal(executionProvider(), "cpu");
    process.env.CUDA_VISIBLE_DEVICES = "0";
    // npm install does not run onnxruntime-node's CUDA download (package.json allowScripts).
    assert.equal(executionProvider(), "cpu");
  } finally {
    if (saved === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
    else process.env.CUDA_VISIBLE_DEVICES = saved;
  }
});

test("a file that is not an ONNX model is refused naming it", () => {
  const file = path.join(root, "junk.onnx");
  writeFileSync(file, "definitely not protobuf \u0000\u00ff");
  assert.throws(
    () => readOnnxSignature(file),
    (err: Error & { code?: string }) => err.code === "CONFIG_INVALID" && err.message.startsWith(`${file} is not an ONNX model`),
  );
});
