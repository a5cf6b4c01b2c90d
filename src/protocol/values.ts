/**
 * JS values ↔ tensors, requests and responses: what handlers and clients use so they rarely see
 * a raw {@link Tensor}. The rules, in short:
 *
 * - {@link tensorToValues}: a tensor → flat typed array / `boolean[]` / `string[]`.
 * - {@link tensorToBuffers}: a BYTES tensor → `Buffer[]`.
 * - {@link valueToTensor}: a value → a tensor, datatype and shape inferred (or given).
 * - {@link handlerResultToResponse}: a handler's return value → response.
 * - {@link responseToValue}: response → value (one `output` unwrapped, else an object by name;
 *   `[1]`-shaped outputs unwrapped to their element).
 * - {@link inputsToRequest}: client values → request.
 *
 * The definitions (and their examples) live in `value-convert.ts` and `value-messages.ts`.
 */
export type { Tensor } from "./types.js";
export {
  BLOB_CONTENT_TYPE,
  JSON_CONTENT_TYPE,
  tensorToBuffers,
  tensorToValues,
  valueToTensor,
  type TensorValues,
} from "./value-convert.js";
export { handlerResultToResponse, inputsToRequest, outputToValue, responseToValue, type InputsOptions } from "./value-messages.js";
