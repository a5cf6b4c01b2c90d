// The demo's ONNX model (examples/mvp_demo/model_repository/classifier/1/model.onnx) is shipped,
// not downloaded: it is the MLP the test helper writes, byte for byte, so it can be made again.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { readOnnxSignature } from "../../src/models/onnx-graph.js";
import { mlpModel } from "../helpers/onnx-models.js";
import { DEMO } from "../helpers/processes.js";

test("the demo's classifier is mlpModel() of test/helpers/onnx-models.ts, with a dynamic batch dimension", () => {
  const file = path.join(DEMO, "model_repository", "classifier", "1", "model.onnx");
  assert.ok(readFileSync(file).equals(mlpModel()), "regenerate it with writeModel(<repo>, 'classifier', '1', mlpModel())");
  assert.deepEqual(readOnnxSignature(file), {
    inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
    outputs: [{ name: "y", datatype: "FP32", shape: [-1, 3] }],
  });
});
