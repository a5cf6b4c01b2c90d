/**
 * The request a handler receives: the decoded OIP request plus helpers that turn input tensors
 * into JS values.
 *
 * @example
 * ```ts
 * app.capability({ type: "embed" }, (req) => {
 *   const text = req.value("text");          // first element: "hello"
 *   const all = req.input("text");           // every element: ["hello"]
 *   const vec = req.input("vector");         // FP32 → Float32Array (a view, no copy)
 *   return new Float32Array(vec.length);
 * });
 * ```
 */
import { AnyServeError } from "../errors.js";
import type { CapabilityMap } from "../protocol/capability.js";
import type { InferRequest, Parameters, Tensor } from "../protocol/types.js";
import { tensorToBuffers, tensorToValues } from "../protocol/values.js";

export type TensorValues = ReturnType<typeof tensorToValues>;

export class InferenceRequest {
  readonly raw: InferRequest;
  /** The capability query the request was routed with. */
  readonly query: CapabilityMap;

  constructor(raw: InferRequest, query: CapabilityMap) {
    this.raw = raw;
    this.query = query;
  }

  get id(): string | undefined {
    return this.raw.id;
  }

  get parameters(): Parameters {
    return this.raw.parameters ?? {};
  }

  get modelName(): string | undefined {
    return this.raw.modelName;
  }

  /** Input tensors as they arrived. */
  get inputs(): readonly Tensor[] {
    return this.raw.inputs;
  }

  /** Input names, in order. */
  get inputNames(): string[] {
    return this.raw.inputs.map((t) => t.name);
  }

  has(name: string): boolean {
    return this.raw.inputs.some((t) => t.name === name);
  }

  tensor(name: string): Tensor {
    const t = this.raw.inputs.find((i) => i.name === name);
    if (!t) {
      throw new AnyServeError(
        "INVALID_TENSOR",
        `input '${name}' is missing: the request has ${this.inputNames.map((n) => `'${n}'`).join(", ") || "no inputs"}`,
      );
    }
    return t;
  }

  /** Every element of an input as JS values (typed array for numbers, string[] for BYTES, boolean[] for BOOL). */
  input(name: string): TensorValues {
    return tensorToValues(this.tensor(name));
  }

  /** The first element of an input (`req.value("text")` → `"hello"`). */
  value(name: string): unknown {
    const values = this.input(name) as ArrayLike<unknown>;
    return values[0];
  }

  /** A BYTES input's elements as Buffers (binary data untouched). */
  bytes(name: string): Buffer[] {
    return tensorToBuffers(this.tensor(name));
  }
}
