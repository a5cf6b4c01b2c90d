/**
 * Small ONNX models written by the tests themselves (no Python, no download): protobuf encoded
 * with the onnx.proto subset anyserve reads (src/models/onnx-graph.ts).
 *
 * - `mlp`: y = relu(x·W1 + b1)·W2 + b2, x FP32 [-1, 4] → y FP32 [-1, 3] (dynamic batch dim);
 * - `fixed`: the same MLP with a fixed batch of 2, x FP32 [2, 4] → y FP32 [2, 3];
 * - `recurrent`: an unrolled recurrent cell, `steps` times h = relu(h·W + b) with one shared W,
 *   x FP32 [-1, width] → y FP32 [-1, width] (the benchmark's cache-resident model: bench/models.ts);
 * - `unloadable`: parses, but ONNX Runtime refuses it (an operator nobody implements);
 * - `typed`: INT64 and BOOL: n INT64 [-1, 2] → doubled INT64 [-1, 2] (n + n); b BOOL [-1, 2] → flipped BOOL [-1, 2] (not b).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { onnxSchema } from "../../src/models/onnx-graph.js";

const FLOAT = 1;
const INT64 = 7;
const BOOL = 9;

const ModelProto = onnxSchema.lookupType("onnx.ModelProto");

type Dim = number | string;

function valueInfo(name: string, elemType: number, dims: Dim[]) {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function floatInit(name: string, dims: number[], values: number[]) {
  return { name, dims, data_type: FLOAT, raw_data: Buffer.from(Float32Array.from(values).buffer) };
}

/** Deterministic weights: a small pseudo-random sequence in [-1, 1). */
function weights(n: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31) * 2 - 1;
  });
}

function model(graph: object): Buffer {
  const msg = ModelProto.fromObject({ ir_version: 8, producer_name: "anyserve-tests", opset_import: [{ domain: "", version: 17 }], graph });
  return Buffer.from(ModelProto.encode(msg).finish());
}

/**
 * `seed` changes the weights (another version of the same model); `sizes` are the input, hidden
 * and output widths (the benchmark's model is wider: bench/models.ts).
 */
export function mlpModel(batch: Dim = "batch", seed = 0, sizes: [number, number, number] = [4, 8, 3]): Buffer {
  const [i, h, o] = sizes;
  return model({
    name: "mlp",
    node: [
      { op_type: "MatMul", input: ["x", "W1"], output: ["h0"] },
      { op_type: "Add", input: ["h0", "b1"], output: ["h1"] },
      { op_type: "Relu", input: ["h1"], output: ["h2"] },
      { op_type: "MatMul", input: ["h2", "W2"], output: ["h3"] },
      { op_type: "Add", input: ["h3", "b2"], output: ["y"] },
    ],
    initializer: [
      floatInit("W1", [i, h], weights(i * h, 1 + seed * 10)),
      floatInit("b1", [h], weights(h, 2 + seed * 10)),
      floatInit("W2", [h, o], weights(h * o, 3 + seed * 10)),
      floatInit("b2", [o], weights(o, 4 + seed * 10)),
    ],
    input: [valueInfo("x", FLOAT, [batch, i])],
    output: [valueInfo("y", FLOAT, [batch, o])],
  });
}

/**
 * An unrolled recurrent cell: `steps` times h = relu(h·W + b), every step with the same W and b.
 * Its weights stay in a core's cache however many steps it runs, so its run time is compute, not
 * memory traffic (unlike a wide MLP, whose weights stream from memory on every run).
 */
export function recurrentModel(width: number, steps: number, batch: Dim = "batch"): Buffer {
  const node: object[] = [];
  let h = "x";
  for (let s = 0; s < steps; s++) {
    const last = s === steps - 1;
    node.push({ op_type: "MatMul", input: [h, "W"], output: [`m${s}`] });
    node.push({ op_type: "Add", input: [`m${s}`, "b"], output: [`a${s}`] });
    node.push({ op_type: "Relu", input: [`a${s}`], output: [last ? "y" : `h${s}`] });
    h = `h${s}`;
  }
  // Scaled so that the activations neither vanish nor grow without bound over the steps.
  const scale = 1 / Math.sqrt(width);
  return model({
    name: "recurrent",
    node,
    initializer: [
      floatInit(
        "W",
        [width, width],
        weights(width * width, 5).map((w) => w * scale * 1.7),
      ),
      floatInit("b", [width], weights(width, 6)),
    ],
    input: [valueInfo("x", FLOAT, [batch, width])],
    output: [valueInfo("y", FLOAT, [batch, width])],
  });
}

/**
 * A well-formed file ONNX Runtime refuses at session creation: its one node is an operator no
 * runtime implements. Its graph signature (x FP32 [-1, 4] → y FP32 [-1, 3]) reads like a real
 * model's, so only loading it in the runtime tells.
 */
export function unloadableModel(): Buffer {
  return model({
    name: "unloadable",
    node: [{ op_type: "NoSuchOperatorAnywhere", input: ["x"], output: ["y"] }],
    input: [valueInfo("x", FLOAT, ["batch", 4])],
    output: [valueInfo("y", FLOAT, ["batch", 3])],
  });
}

export function typedModel(): Buffer {
  return model({
    name: "typed",
    node: [
      { op_type: "Add", input: ["n", "n"], output: ["doubled"] },
      { op_type: "Not", input: ["b"], output: ["flipped"] },
    ],
    input: [valueInfo("n", INT64, ["batch", 2]), valueInfo("b", BOOL, ["batch", 2])],
    output: [valueInfo("doubled", INT64, ["batch", 2]), valueInfo("flipped", BOOL, ["batch", 2])],
  });
}

/** Writes `bytes` as `<root>/<name>/<version>/model.onnx`; returns the file. */
export function writeModel(root: string, name: string, version: string, bytes: Buffer): string {
  const dir = path.join(root, name, version);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "model.onnx");
  writeFileSync(file, bytes);
  return file;
}
