/**
 * The ONNX Runtime backend: an ONNX file served as capability `{model: <name>[, version]}` with no
 * user code (`app: onnx:./models/classifier/1/model.onnx`).
 *
 * - Metadata is the model's own graph signature (onnx-graph.ts), read without the runtime.
 * - `onnxruntime-node` is an optional dependency, imported in `onStart` of each worker: one
 *   session per worker thread (`thread_count` sessions under `multi`/`pool`), one for `single`/`async`.
 * - Requests are checked against the signature before they reach the session (INVALID_TENSOR,
 *   naming the input), one by one, so one bad request in a batch fails alone.
 * - The handler is a batch handler: with `batch_size > 1` the lane hands it the waiting requests
 *   and, when every input and output has a dynamic first dimension, they are concatenated along
 *   it into one `session.run` and split back; otherwise they run one after another.
 * - `gpu_count > 0` (a non-empty `CUDA_VISIBLE_DEVICES`) selects the CUDA execution provider when
 *   onnxruntime-node has its CUDA binaries installed, the CPU one otherwise.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { AnyServeError } from "../errors.js";
import { DATATYPE_INFO } from "../protocol/datatypes.js";
import type { Datatype, Tensor } from "../protocol/types.js";
import { AnyServe, type TensorSpec } from "../sdk/app.js";
import type { InferenceRequest } from "../sdk/request.js";
import { jsonLogger } from "../util/log.js";
import { readOnnxSignature, type OnnxSignature } from "./onnx-graph.js";

type Ort = typeof import("onnxruntime-node");
type OrtTensor = import("onnxruntime-node").Tensor;
type OrtSession = import("onnxruntime-node").InferenceSession;
type OrtType = OrtTensor["type"];

/** OIP datatype → ONNX Runtime tensor type (BF16 has none in onnxruntime-node). */
const ORT_TYPES: Partial<Record<Datatype, OrtType>> = {
  BOOL: "bool",
  UINT8: "uint8",
  UINT16: "uint16",
  UINT32: "uint32",
  UINT64: "uint64",
  INT8: "int8",
  INT16: "int16",
  INT32: "int32",
  INT64: "int64",
  FP16: "float16",
  FP32: "float32",
  FP64: "float64",
  BYTES: "string",
};

const TYPED_ARRAYS: Partial<Record<OrtType, new (b: ArrayBufferLike, offset: number, length: number) => ArrayBufferView>> = {
  bool: Uint8Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  float16: Uint16Array,
  float32: Float32Array,
  float64: Float64Array,
};

export interface OnnxAppOptions {
  /** Model name; default: the folder above a numeric version folder (`<name>/<version>/model.onnx`), else the file's stem. */
  name?: string;
  /** Model version; default: the numeric folder the file is in, if any. */
  version?: string;
  /** Inputs/outputs to serve instead of the graph's (a repository's `config.yaml` overrides). */
  signature?: Partial<OnnxSignature>;
}

/** The name and version a model file is served under by default. */
export function modelIdentity(file: string): { name: string; version?: string } {
  const dir = path.basename(path.dirname(file));
  if (/^\d+$/.test(dir)) return { name: path.basename(path.dirname(path.dirname(file))), version: dir };
  return { name: path.basename(file).replace(/\.onnx$/, "") };
}

/** Which execution provider a session here gets, and why (said in the log and the metadata). */
export function executionProvider(): "cuda" | "cpu" {
  const gpus = process.env.CUDA_VISIBLE_DEVICES;
  if (!gpus || gpus.trim() === "") return "cpu";
  try {
    // The CUDA provider ships separately (see docs/models.md): present only when installed on purpose.
    const main = createRequire(import.meta.url).resolve("onnxruntime-node");
    const bin = path.join(path.dirname(main), "..", "bin", "napi-v6", process.platform, process.arch);
    return existsSync(path.join(bin, "libonnxruntime_providers_cuda.so")) ? "cuda" : "cpu";
  } catch {
    return "cpu";
  }
}

/** Whether requests can be stacked: every input and output has a dynamic first dimension. */
export function batchesAlongFirstDim(sig: OnnxSignature): boolean {
  return [...sig.inputs, ...sig.outputs].every((t) => t.shape.length > 0 && t.shape[0] === -1);
}

/**
 * An app serving the ONNX model in `file`.
 *
 * @example
 * ```ts
 * const app = onnxApp("./models/mlp/1/model.onnx"); // capability {model: "mlp", version: "1"}
 * ```
 */
export function onnxApp(file: string, o: OnnxAppOptions = {}): AnyServe {
  const graph = readOnnxSignature(file);
  const sig: OnnxSignature = { inputs: o.signature?.inputs ?? graph.inputs, outputs: o.signature?.outputs ?? graph.outputs };
  for (const t of sig.inputs) {
    if (!ORT_TYPES[t.datatype])
      throw new AnyServeError("CONFIG_INVALID", `${file}: input '${t.name}' is ${t.datatype}, which ONNX Runtime for Node cannot take`);
  }
  const id = modelIdentity(file);
  const name = o.name ?? id.name;
  const version = o.version ?? id.version;
  const stacked = batchesAlongFirstDim(sig);
  const provider = executionProvider();
  let session: OrtSession | undefined;
  let runtime: Ort | undefined;
  const app = new AnyServe();
  const run = async (requests: InferenceRequest[]): Promise<unknown[]> => {
    if (!session || !runtime) throw new AnyServeError("INTERNAL", `model '${name}': no ONNX Runtime session in this worker`);
    return runBatch(runtime, session, sig, stacked, requests);
  };
  app.model(name, run as never, {
    ...(version !== undefined ? { version } : {}),
    batch: true,
    inputs: sig.inputs,
    outputs: sig.outputs,
    platform: "onnxruntime_onnx",
    parameters: { execution_provider: provider, batching: stacked ? "first_dimension" : "one_by_one" },
    onStart: async (info) => {
      runtime = await importRuntime();
      session = await createSession(runtime, file, provider);
      jsonLogger("onnx", { replica: info.replicaId, worker: info.worker }).info(
        `model '${name}'${version ? ` version ${version}` : ""} loaded from ${file} on ${provider.toUpperCase()}`,
      );
    },
    onStop: async () => {
      const s = session;
      session = undefined;
      await s?.release();
    },
  });
  return app;
}

/** A session on `file` as every worker has one: the provider chosen here, one intra-op thread. */
function createSession(runtime: Ort, file: string, provider: "cuda" | "cpu"): Promise<OrtSession> {
  return runtime.InferenceSession.create(file, {
    executionProviders: provider === "cuda" ? ["cuda", "cpu"] : ["cpu"],
    // One session per worker thread: give each one intra-op thread, the strategy is the parallelism.
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
}

/**
 * Creates a session on `file` and releases it: what `anyserve up`'s app check and a repository's
 * load run before anything is replaced, because a file whose graph reads fine can still be refused
 * by ONNX Runtime (an operator it does not implement, types that do not fit) — and would then
 * fail every worker's start after the old version was already gone.
 * @throws AnyServeError CONFIG_INVALID naming the file and ONNX Runtime's reason
 */
export async function checkOnnxSession(file: string): Promise<void> {
  const runtime = await importRuntime();
  let session: OrtSession;
  try {
    session = await createSession(runtime, file, executionProvider());
  } catch (err) {
    throw new AnyServeError("CONFIG_INVALID", `${file}: ONNX Runtime cannot load it: ${(err as Error).message.split("\n")[0]}`);
  }
  await session.release();
}

/** The optional dependency, with an error that says how to get it. */
async function importRuntime(): Promise<Ort> {
  try {
    const mod = (await import("onnxruntime-node")) as Ort & { default?: Ort };
    return mod.default ?? mod;
  } catch (err) {
    throw new AnyServeError(
      "CAPABILITY_FAILED",
      `serving an ONNX model needs the optional dependency onnxruntime-node (npm install onnxruntime-node): ${(err as Error).message}`,
    );
  }
}

/** Checks one request against the signature; throws INVALID_TENSOR naming the input. */
export function checkInputs(sig: OnnxSignature, req: InferenceRequest): void {
  const expected = new Set(sig.inputs.map((s) => s.name));
  for (const t of req.inputs) {
    if (!expected.has(t.name))
      throw new AnyServeError(
        "INVALID_TENSOR",
        `input '${t.name}' is not an input of the model: it takes ${sig.inputs.map((s) => `'${s.name}'`).join(", ")}`,
      );
  }
  for (const s of sig.inputs) {
    const t = req.tensor(s.name);
    if (t.datatype !== s.datatype)
      throw new AnyServeError("INVALID_TENSOR", `input '${s.name}': expected datatype ${s.datatype}, got ${t.datatype}`);
    const fits = t.shape.length === s.shape.length && s.shape.every((d, i) => d === -1 || d === t.shape[i]);
    if (!fits) throw new AnyServeError("INVALID_TENSOR", `input '${s.name}': expected shape ${specShape(s)}, got [${t.shape.join(", ")}]`);
  }
}

function specShape(s: TensorSpec): string {
  return `[${s.shape.map((d) => (d === -1 ? "-1" : String(d))).join(", ")}]`;
}

/** One OIP input → an ONNX Runtime tensor (a view on the request's bytes when they are aligned). */
function toOrt(ort: Ort, t: Tensor, type: OrtType, dims: number[]): OrtTensor {
  if (type === "string")
    return new ort.Tensor(
      "string",
      (t.data as Buffer[]).map((b) => b.toString("utf8")),
      dims,
    );
  const bytes = t.data as Buffer;
  const Ctor = TYPED_ARRAYS[type]!;
  const size = DATATYPE_INFO[t.datatype].size;
  // A typed array must start on a multiple of its element size; a JSON-decoded or sliced buffer may not.
  const aligned = bytes.byteOffset % size === 0 ? bytes : Buffer.from(bytes);
  return new ort.Tensor(type as "float32", new Ctor(aligned.buffer, aligned.byteOffset, aligned.byteLength / size) as Float32Array, dims);
}

/** An ONNX Runtime output → an OIP tensor, rows `[from, to)` of its first dimension (all when `to` is undefined). */
function fromOrt(name: string, datatype: Datatype, t: OrtTensor, from = 0, to?: number): Tensor {
  const dims = [...t.dims];
  const rows = dims[0] ?? 1;
  const end = to ?? rows;
  const perRow = rows === 0 ? 0 : t.size / rows;
  const shape = to === undefined ? dims : [end - from, ...dims.slice(1)];
  if (t.type === "string") {
    const all = (t.data as string[]).slice(to === undefined ? 0 : from * perRow, to === undefined ? undefined : end * perRow);
    return { name, datatype, shape, data: all.map((s) => Buffer.from(s, "utf8")) };
  }
  const view = t.data as ArrayBufferView;
  const size = view.byteLength / Math.max(t.size, 1);
  const start = to === undefined ? 0 : from * perRow * size;
  const length = to === undefined ? view.byteLength : (end - from) * perRow * size;
  return { name, datatype, shape, data: Buffer.from(view.buffer, view.byteOffset + start, length) };
}

/** The outputs a request asked for (all when it named none). */
function wanted(sig: OnnxSignature, req: InferenceRequest): TensorSpec[] {
  const asked = req.raw.outputs;
  if (!asked || asked.length === 0) return sig.outputs;
  return asked.map((o) => {
    const spec = sig.outputs.find((s) => s.name === o.name);
    if (!spec)
      throw new AnyServeError(
        "INVALID_TENSOR",
        `requested output '${o.name}' is not an output of the model: it answers ${sig.outputs.map((s) => `'${s.name}'`).join(", ")}`,
      );
    return spec;
  });
}

interface Checked {
  at: number;
  req: InferenceRequest;
  outs: TensorSpec[];
}

/** Runs a batch of requests: stacked into one `session.run` when the model allows, else one by one. */
async function runBatch(
  ort: Ort,
  session: OrtSession,
  sig: OnnxSignature,
  stacked: boolean,
  requests: InferenceRequest[],
): Promise<unknown[]> {
  const results: unknown[] = new Array(requests.length);
  const ok: Checked[] = [];
  requests.forEach((req, at) => {
    try {
      checkInputs(sig, req);
      ok.push({ at, req, outs: wanted(sig, req) });
    } catch (err) {
      results[at] = err;
    }
  });
  if (stacked && ok.length > 1 && sameTails(sig, ok)) {
    try {
      await runStacked(ort, session, sig, ok, results);
    } catch (err) {
      for (const c of ok) results[c.at] = err;
    }
    return results;
  }
  for (const c of ok) {
    try {
      const feeds: Record<string, OrtTensor> = {};
      for (const s of sig.inputs) {
        const t = c.req.tensor(s.name);
        feeds[s.name] = toOrt(ort, t, ORT_TYPES[s.datatype]!, t.shape);
      }
      const out = await session.run(feeds);
      results[c.at] = { outputs: c.outs.map((s) => fromOrt(s.name, s.datatype, out[s.name]!)) };
    } catch (err) {
      results[c.at] = err instanceof AnyServeError ? err : new AnyServeError("WORKER_ERROR", `ONNX Runtime: ${(err as Error).message}`);
    }
  }
  return results;
}

/**
 * Whether the requests can be stacked: for each input, the same dimensions after the first, and
 * within a request the same first dimension on every input (else they run one by one).
 */
function sameTails(sig: OnnxSignature, ok: Checked[]): boolean {
  const first = ok[0]!.req;
  return ok.every(({ req }) => {
    const rows = req.tensor(sig.inputs[0]!.name).shape[0];
    return sig.inputs.every((s) => {
      const shape = req.tensor(s.name).shape;
      const ref = first.tensor(s.name).shape;
      return shape[0] === rows && shape.every((d, i) => i === 0 || d === ref[i]);
    });
  });
}

/** Concatenates every input along the first dimension, runs once, and splits each output back by rows. */
async function runStacked(ort: Ort, session: OrtSession, sig: OnnxSignature, ok: Checked[], results: unknown[]): Promise<void> {
  const rows = ok.map((c) => c.req.tensor(sig.inputs[0]!.name).shape[0]!);
  const feeds: Record<string, OrtTensor> = {};
  for (const s of sig.inputs) {
    const parts = ok.map((c) => c.req.tensor(s.name));
    const tail = parts[0]!.shape.slice(1);
    const total = rows.reduce((a, b) => a + b, 0);
    const data: Tensor["data"] =
      s.datatype === "BYTES" ? parts.flatMap((p) => p.data as Buffer[]) : Buffer.concat(parts.map((p) => p.data as Buffer));
    feeds[s.name] = toOrt(ort, { name: s.name, datatype: s.datatype, shape: [total, ...tail], data }, ORT_TYPES[s.datatype]!, [
      total,
      ...tail,
    ]);
  }
  const out = await session.run(feeds);
  let from = 0;
  ok.forEach((c, k) => {
    const to = from + rows[k]!;
    results[c.at] = { outputs: c.outs.map((s) => fromOrt(s.name, s.datatype, out[s.name]!, from, to)) };
    from = to;
  });
}
