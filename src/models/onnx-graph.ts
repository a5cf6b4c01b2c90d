/**
 * Reads an ONNX model's signature — its graph inputs and outputs with datatypes and shapes —
 * straight from the file's protobuf, without ONNX Runtime: the replica's main thread and
 * `anyserve up`'s app check answer metadata and check requests without loading the runtime or
 * allocating a session (the runtime is an optional dependency, loaded only in the workers that run
 * the model).
 *
 * The schema below is the subset of onnx.proto (github.com/onnx/onnx, Apache-2.0) anyserve reads
 * and the tests write models with; field numbers are onnx.proto's own, so any ONNX file decodes.
 */
import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import { AnyServeError } from "../errors.js";
import type { Datatype } from "../protocol/types.js";
import type { TensorSpec } from "../sdk/app.js";

/** The onnx.proto subset, as protobufjs reflection JSON (package `onnx`). */
const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: {
            name: { type: "string", id: 1 },
            f: { type: "float", id: 2 },
            i: { type: "int64", id: 3 },
            s: { type: "bytes", id: 4 },
            t: { type: "TensorProto", id: 5 },
            floats: { rule: "repeated", type: "float", id: 7 },
            ints: { rule: "repeated", type: "int64", id: 8 },
            type: { type: "int32", id: 20 },
          },
        },
        ValueInfoProto: { fields: { name: { type: "string", id: 1 }, type: { type: "TypeProto", id: 2 } } },
        NodeProto: {
          fields: {
            input: { rule: "repeated", type: "string", id: 1 },
            output: { rule: "repeated", type: "string", id: 2 },
            name: { type: "string", id: 3 },
            op_type: { type: "string", id: 4 },
            attribute: { rule: "repeated", type: "AttributeProto", id: 5 },
            domain: { type: "string", id: 7 },
          },
        },
        ModelProto: {
          fields: {
            ir_version: { type: "int64", id: 1 },
            producer_name: { type: "string", id: 2 },
            graph: { type: "GraphProto", id: 7 },
            opset_import: { rule: "repeated", type: "OperatorSetIdProto", id: 8 },
          },
        },
        GraphProto: {
          fields: {
            node: { rule: "repeated", type: "NodeProto", id: 1 },
            name: { type: "string", id: 2 },
            initializer: { rule: "repeated", type: "TensorProto", id: 5 },
            input: { rule: "repeated", type: "ValueInfoProto", id: 11 },
            output: { rule: "repeated", type: "ValueInfoProto", id: 12 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: "repeated", type: "int64", id: 1 },
            data_type: { type: "int32", id: 2 },
            float_data: { rule: "repeated", type: "float", id: 4 },
            int32_data: { rule: "repeated", type: "int32", id: 5 },
            int64_data: { rule: "repeated", type: "int64", id: 7 },
            name: { type: "string", id: 8 },
            raw_data: { type: "bytes", id: 9 },
          },
        },
        TensorShapeProto: {
          fields: { dim: { rule: "repeated", type: "Dimension", id: 1 } },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ["dim_value", "dim_param"] } },
              fields: { dim_value: { type: "int64", id: 1 }, dim_param: { type: "string", id: 2 } },
            },
          },
        },
        TypeProto: {
          fields: { tensor_type: { type: "Tensor", id: 1 } },
          nested: {
            Tensor: { fields: { elem_type: { type: "int32", id: 1 }, shape: { type: "TensorShapeProto", id: 2 } } },
          },
        },
        OperatorSetIdProto: { fields: { domain: { type: "string", id: 1 }, version: { type: "int64", id: 2 } } },
      },
    },
  },
};

/** The onnx.proto subset; `onnxSchema.lookupType("onnx.ModelProto")` encodes and decodes models. */
export const onnxSchema = protobuf.Root.fromJSON(SCHEMA);

const ModelProto = onnxSchema.lookupType("onnx.ModelProto");

/** ONNX `TensorProto.DataType` → OIP datatype (the types both sides have). */
export const ONNX_ELEM_TYPES: Readonly<Record<number, Datatype>> = {
  1: "FP32",
  2: "UINT8",
  3: "INT8",
  4: "UINT16",
  5: "INT16",
  6: "INT32",
  7: "INT64",
  8: "BYTES",
  9: "BOOL",
  10: "FP16",
  11: "FP64",
  12: "UINT32",
  13: "UINT64",
  16: "BF16",
};

/** What a model takes and answers, as OIP metadata lists it (dynamic dimensions -1). */
export interface OnnxSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

interface ValueInfo {
  name?: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: { dim_value?: unknown; dim_param?: string }[] } } };
}

/**
 * The signature of the model in `file`. Throws CONFIG_INVALID naming the file when it is not an
 * ONNX model or a graph input/output is not a tensor of a type OIP has.
 *
 * @example
 * ```ts
 * readOnnxSignature("models/mlp/1/model.onnx");
 * // { inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }], outputs: [{ name: "y", datatype: "FP32", shape: [-1, 3] }] }
 * ```
 */
export function readOnnxSignature(file: string): OnnxSignature {
  let model: { graph?: { input?: ValueInfo[]; output?: ValueInfo[]; initializer?: { name?: string }[] } };
  try {
    model = ModelProto.toObject(ModelProto.decode(readFileSync(file)), { longs: Number }) as typeof model;
  } catch (err) {
    throw new AnyServeError("CONFIG_INVALID", `${file} is not an ONNX model: ${(err as Error).message}`);
  }
  const graph = model.graph;
  if (!graph?.output?.length) throw new AnyServeError("CONFIG_INVALID", `${file} is not an ONNX model: it has no graph outputs`);
  // Before IR version 4 the initializers (weights) were listed among the inputs too.
  const weights = new Set((graph.initializer ?? []).map((t) => t.name));
  const spec = (v: ValueInfo, role: string): TensorSpec => {
    const tt = v.type?.tensor_type;
    const datatype = ONNX_ELEM_TYPES[tt?.elem_type ?? 0];
    if (!datatype)
      throw new AnyServeError(
        "CONFIG_INVALID",
        `${file}: ${role} '${v.name}' is not a tensor of a type OIP has (ONNX elem_type ${tt?.elem_type ?? "none"})`,
      );
    const shape = (tt?.shape?.dim ?? []).map((d) => (typeof d.dim_value === "number" && d.dim_value > 0 ? d.dim_value : -1));
    return { name: v.name ?? "", datatype, shape };
  };
  return {
    inputs: (graph.input ?? []).filter((v) => !weights.has(v.name)).map((v) => spec(v, "input")),
    outputs: graph.output.map((v) => spec(v, "output")),
  };
}
