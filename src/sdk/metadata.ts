/**
 * OIP model metadata (`GET /v2/models/{m}`, gRPC `ModelMetadata`) of a handler: the tensors it
 * declared once with `app.model(name, fn, {inputs, outputs})` (or `app.capability`), and when it
 * declared no inputs but an `example`, the inputs that example sends (names, datatypes, shapes).
 */
import { isDatatype } from "../protocol/datatypes.js";
import type { ModelMetadata } from "../protocol/call.js";
import { inputsToRequest } from "../protocol/value-messages.js";
import type { HandlerEntry, TensorSpec } from "./app.js";

/**
 * Checks declared tensors when the handler is registered: a name, one of the OIP datatypes, a
 * shape of integers (-1 for a variable dimension). Throws a TypeError naming the tensor.
 */
export function checkTensorSpecs(specs: unknown, what: "inputs" | "outputs"): void {
  if (specs === undefined) return;
  if (!Array.isArray(specs)) throw new TypeError(`${what} must be an array of {name, datatype, shape}, got ${typeof specs}`);
  const seen = new Set<string>();
  specs.forEach((s: Partial<TensorSpec> | null, i) => {
    const where = `${what}[${i}]`;
    if (s === null || typeof s !== "object") throw new TypeError(`${where} must be {name, datatype, shape}, got ${String(s)}`);
    if (typeof s.name !== "string" || s.name === "") throw new TypeError(`${where}.name must be a non-empty string`);
    if (seen.has(s.name)) throw new TypeError(`${where}: '${s.name}' is declared twice`);
    seen.add(s.name);
    if (!isDatatype(s.datatype))
      throw new TypeError(
        `${where} ('${s.name}').datatype must be an OIP datatype (BOOL, INT32, FP32, BYTES, ...), got ${String(s.datatype)}`,
      );
    if (!Array.isArray(s.shape) || !s.shape.every((d) => Number.isSafeInteger(d) && d >= -1)) {
      throw new TypeError(
        `${where} ('${s.name}').shape must be an array of integers, -1 for a variable dimension, got ${JSON.stringify(s.shape)}`,
      );
    }
  });
}

/** The metadata a replica answers for `entry`, under the model name (and version) the caller asked for. */
export function handlerMetadata(entry: HandlerEntry, name: string, version: string | undefined): ModelMetadata {
  const o = entry.options;
  const v = version ?? entry.capability.version;
  return {
    name,
    ...(v !== undefined ? { versions: [v] } : {}),
    platform: o.platform ?? "anyserve",
    inputs: o.inputs ?? exampleInputs(o.example),
    outputs: o.outputs ?? [],
    ...(o.parameters !== undefined ? { parameters: o.parameters } : {}),
  };
}

/** The tensors an example call sends (`{text: "hi"}` → text BYTES [1]); none when there is no example or it does not encode. */
function exampleInputs(example: Record<string, unknown> | undefined): TensorSpec[] {
  if (example === undefined) return [];
  try {
    return inputsToRequest(example).inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape }));
  } catch {
    return [];
  }
}
