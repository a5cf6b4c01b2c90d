/**
 * What an `app:` spec names: a user's app file (sdk/load-app.ts), or a model served with no user
 * code — `onnx:PATH` (an ONNX file, onnx-app.ts). Every place that loads an app (the replica,
 * each worker thread and process, `anyserve up`'s check) loads it through here, so a model spec
 * works wherever an app spec does. The ONNX code is imported only for a model spec: a worker of a
 * plain app never loads it, nor protobufjs.
 */
import path from "node:path";
import type { AnyServe } from "../sdk/app.js";
import { loadApp, type LoadAppOptions } from "../sdk/load-app.js";

/** The prefix of a spec that serves an ONNX file: `onnx:./models/classifier/1/model.onnx`. */
export const ONNX_PREFIX = "onnx:";

/**
 * Loads the app `spec` names.
 *
 * @example
 * ```ts
 * await loadServable("./app.ts:app");                         // a user's app
 * await loadServable("onnx:./models/classifier/1/model.onnx"); // {model: classifier, version: 1}
 * ```
 */
export async function loadServable(spec: string, opts: LoadAppOptions = {}): Promise<AnyServe> {
  if (spec.startsWith(ONNX_PREFIX)) {
    const [{ onnxApp, modelIdentity }, { readModelConfig }] = await Promise.all([import("./onnx-app.js"), import("./repository.js")]);
    const file = path.resolve(opts.cwd ?? process.cwd(), spec.slice(ONNX_PREFIX.length));
    // In a repository's layout (<name>/<version>/model.onnx), <name>/config.yaml may override the tensors.
    const c = modelIdentity(file).version !== undefined ? readModelConfig(path.dirname(path.dirname(file))) : {};
    return onnxApp(file, { signature: { ...(c.inputs ? { inputs: c.inputs } : {}), ...(c.outputs ? { outputs: c.outputs } : {}) } });
  }
  return loadApp(spec, opts);
}

/**
 * Loads the app `spec` names as {@link loadServable} does and, for a model, also has its runtime
 * load the file (a session created and released): what checking an app before serving it means.
 */
export async function checkServable(spec: string, opts: LoadAppOptions = {}): Promise<AnyServe> {
  const app = await loadServable(spec, opts);
  if (spec.startsWith(ONNX_PREFIX)) {
    const { checkOnnxSession } = await import("./onnx-app.js");
    await checkOnnxSession(path.resolve(opts.cwd ?? process.cwd(), spec.slice(ONNX_PREFIX.length)));
  }
  return app;
}
