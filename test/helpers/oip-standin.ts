/**
 * A stand-in Open Inference Protocol v2 server that is not anyserve — it imports nothing from
 * src/ — for the tests of foreign replicas: node:http serves the OIP REST routes and grpc-js
 * `inference.GRPCInferenceService`, with messages read and written by protobufjs from the standard
 * proto file. It stands in for Triton, KServe, MLServer or the seed's Python replicas.
 *
 * Models:
 * - `echo-model`: every input back as output `<name>_out` (BYTES, FP32, INT32, INT64, BOOL);
 *   over gRPC `ModelStreamInfer`, three answers per request, each with an output `chunk` = [i].
 * - `bad-model`: refuses every call (REST 400 `{"error"}`, gRPC INVALID_ARGUMENT).
 * - `flood-model`: over gRPC `ModelStreamInfer`, answers of 64 KiB (output `blob`) as fast as the
 *   stream takes them — writing on only when grpc-js says the stream has room (`write()` true, or
 *   `drain`), as a well-behaved server does — until 5,000 or the call is cancelled; `flood` counts
 *   them and says whether the call was cancelled.
 * It records the model name of every inference (`seen`) and can be made not ready (`ready`).
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { ROOT } from "./processes.js";

const root = new protobuf.Root().loadSync(path.join(ROOT, "proto", "grpc_predict_v2.proto"), { keepCase: true });
const T = (name: string): protobuf.Type => root.lookupType(`inference.${name}`);

const MODELS = ["echo-model", "bad-model", "flood-model"];
/** Answers `flood-model` streams at most (5,000 × 64 KiB: ~320 MB if nothing held it back). */
const FLOOD_MAX = 5_000;
const METADATA = {
  "echo-model": {
    name: "echo-model",
    versions: ["1"],
    platform: "standin",
    inputs: [{ name: "text", datatype: "BYTES", shape: [-1] }],
    outputs: [{ name: "text_out", datatype: "BYTES", shape: [-1] }],
  },
  "bad-model": { name: "bad-model", versions: [], platform: "standin", inputs: [], outputs: [] },
  "flood-model": { name: "flood-model", versions: ["1"], platform: "standin", inputs: [], outputs: [] },
} as Record<string, unknown>;

/** What `flood-model` streams did: answers written, and whether their call was cancelled. */
interface Flood {
  written: number;
  cancelled: boolean;
}

type Values = (string | number | boolean)[];
interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
  values: Values;
}

const FIELD: Record<string, string> = {
  BYTES: "bytes_contents",
  FP32: "fp32_contents",
  FP64: "fp64_contents",
  INT32: "int_contents",
  INT64: "int64_contents",
  BOOL: "bool_contents",
};

export interface StandIn {
  restUrl: string;
  grpcAddress: string;
  /** Model names of every inference, in order (REST and gRPC). */
  seen: string[];
  ready: boolean;
  /** The last `flood-model` stream (undefined before the first). */
  readonly flood: Flood | undefined;
  close(): Promise<void>;
}

export async function startStandIn(): Promise<StandIn> {
  const state: StandInState = { seen: [], ready: true, flood: undefined };
  const server = http.createServer((req, res) => void serveRest(req, res, state));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const grpcServer = new grpc.Server();
  grpcServer.addService(grpcDefinition(), grpcHandlers(state));
  const port = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    restUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    grpcAddress: `127.0.0.1:${port}`,
    get seen() {
      return state.seen;
    },
    get flood() {
      return state.flood;
    },
    get ready() {
      return state.ready;
    },
    set ready(v: boolean) {
      state.ready = v;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      grpcServer.forceShutdown();
    },
  };
}

// ── REST ─────────────────────────────────────────────────────────────────────────────────────────

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function serveRest(req: IncomingMessage, res: ServerResponse, state: StandInState): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const url = req.url ?? "/";
  if (req.method === "GET" && url === "/v2/health/live") return json(res, 200, { live: true });
  if (req.method === "GET" && url === "/v2/health/ready") return json(res, state.ready ? 200 : 503, { ready: state.ready });
  const m = /^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?(\/ready|\/infer)?$/.exec(url);
  const model = m ? decodeURIComponent(m[1]!) : "";
  if (!m || !MODELS.includes(model)) return json(res, 404, { error: `Request for unknown model: '${model}' is not found` });
  if (m[2] === "/ready") return json(res, state.ready ? 200 : 400, {});
  if (m[2] === undefined) return json(res, 200, METADATA[model]);
  state.seen.push(model);
  if (model === "bad-model") return json(res, 400, { error: "input 'text': unexpected shape for bad-model" });
  const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id?: string; inputs: (Omit<Tensor, "values"> & { data: Values })[] };
  json(res, 200, {
    model_name: model,
    model_version: "1",
    ...(body.id ? { id: body.id } : {}),
    outputs: body.inputs.map((t) => ({ name: `${t.name}_out`, datatype: t.datatype, shape: t.shape, data: t.data })),
  });
}

// ── gRPC ─────────────────────────────────────────────────────────────────────────────────────────

function grpcDefinition(): grpc.ServiceDefinition {
  const method = (name: string, req: string, res: string, stream = false): grpc.MethodDefinition<unknown, unknown> => ({
    path: `/inference.GRPCInferenceService/${name}`,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: (v) =>
      Buffer.from(
        T(req)
          .encode(v as protobuf.Message)
          .finish(),
      ),
    requestDeserialize: (b: Buffer) => T(req).toObject(T(req).decode(b), { defaults: true, longs: Number }),
    responseSerialize: (v) =>
      Buffer.from(
        T(res)
          .encode(T(res).fromObject(v as object))
          .finish(),
      ),
    responseDeserialize: (b: Buffer) => T(res).decode(b),
  });
  return {
    ServerLive: method("ServerLive", "ServerLiveRequest", "ServerLiveResponse"),
    ServerReady: method("ServerReady", "ServerReadyRequest", "ServerReadyResponse"),
    ModelReady: method("ModelReady", "ModelReadyRequest", "ModelReadyResponse"),
    ModelMetadata: method("ModelMetadata", "ModelMetadataRequest", "ModelMetadataResponse"),
    ModelInfer: method("ModelInfer", "ModelInferRequest", "ModelInferResponse"),
    ModelStreamInfer: method("ModelStreamInfer", "ModelInferRequest", "ModelStreamInferResponse", true),
  };
}

interface PRequest {
  model_name: string;
  id: string;
  inputs: { name: string; datatype: string; shape: number[]; contents?: Record<string, unknown[]> }[];
  raw_input_contents: Buffer[];
}

/** Input values from typed contents or raw contents (BYTES as 4-byte-length-prefixed elements, little-endian numbers). */
function inputsOf(req: PRequest): Tensor[] {
  return req.inputs.map((t, i) => {
    const raw = req.raw_input_contents[i];
    let values: Values;
    if (raw === undefined) {
      values = ((t.contents?.[FIELD[t.datatype]!] ?? []) as unknown[]).map((v) =>
        Buffer.isBuffer(v) || v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : (v as number),
      );
    } else if (t.datatype === "BYTES") {
      values = [];
      for (let off = 0; off < raw.length; ) {
        const n = raw.readUInt32LE(off);
        values.push(raw.toString("utf8", off + 4, off + 4 + n));
        off += 4 + n;
      }
    } else if (t.datatype === "FP32") values = Array.from({ length: raw.length / 4 }, (_, k) => raw.readFloatLE(k * 4));
    else if (t.datatype === "INT32") values = Array.from({ length: raw.length / 4 }, (_, k) => raw.readInt32LE(k * 4));
    else if (t.datatype === "INT64") values = Array.from({ length: raw.length / 8 }, (_, k) => Number(raw.readBigInt64LE(k * 8)));
    else if (t.datatype === "BOOL") values = [...raw].map((b) => b !== 0);
    else values = Array.from({ length: raw.length / 8 }, (_, k) => raw.readDoubleLE(k * 8));
    return { name: t.name, datatype: t.datatype, shape: t.shape.map(Number), values };
  });
}

function output(name: string, t: Omit<Tensor, "name">): Record<string, unknown> {
  const field = FIELD[t.datatype]!;
  const values = t.datatype === "BYTES" ? t.values.map((v) => Buffer.from(String(v))) : t.values;
  return { name, datatype: t.datatype, shape: t.shape, contents: { [field]: values } };
}

interface StandInState {
  seen: string[];
  ready: boolean;
  flood: Flood | undefined;
}

/** Streams 64 KiB answers while the stream has room, until FLOOD_MAX or the call is cancelled. */
function flood(call: grpc.ServerDuplexStream<PRequest, unknown>, req: PRequest, state: StandInState): Flood {
  const f: Flood = { written: 0, cancelled: false };
  state.flood = f;
  const message = {
    model_name: req.model_name,
    id: req.id,
    outputs: [output("blob", { datatype: "BYTES", shape: [1], values: ["x".repeat(64 * 1024)] })],
  };
  call.on("cancelled", () => {
    f.cancelled = true;
  });
  const pump = (): void => {
    while (!f.cancelled && f.written < FLOOD_MAX) {
      f.written++;
      if (!call.write({ infer_response: message })) {
        call.once("drain", pump);
        return;
      }
    }
    if (!f.cancelled) call.end();
  };
  pump();
  return f;
}

function grpcHandlers(state: StandInState): grpc.UntypedServiceImplementation {
  const answer = (req: PRequest) => ({
    model_name: req.model_name,
    model_version: "1",
    id: req.id,
    outputs: inputsOf(req).map((t) => output(`${t.name}_out`, t)),
  });
  const refuse = (model: string): grpc.ServiceError | undefined => {
    if (!MODELS.includes(model))
      return Object.assign(new Error(`unknown model '${model}'`), {
        code: grpc.status.NOT_FOUND,
        details: `unknown model '${model}'`,
      }) as grpc.ServiceError;
    if (model === "bad-model")
      return Object.assign(new Error("bad"), {
        code: grpc.status.INVALID_ARGUMENT,
        details: "input 'text': unexpected shape for bad-model",
      }) as grpc.ServiceError;
    return undefined;
  };
  return {
    ServerLive: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { live: true }),
    ServerReady: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { ready: state.ready }),
    ModelReady: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { ready: state.ready && MODELS.includes(call.request.name) }),
    ModelMetadata: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const meta = METADATA[call.request.name];
      if (meta === undefined) cb(refuse(call.request.name)!);
      else cb(null, meta);
    },
    ModelInfer: (call: grpc.ServerUnaryCall<PRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      state.seen.push(call.request.model_name);
      const err = refuse(call.request.model_name);
      if (err) cb(err);
      else cb(null, answer(call.request));
    },
    ModelStreamInfer: (call: grpc.ServerDuplexStream<PRequest, unknown>) => {
      // A flood ends its stream itself, when it is done; other answers are all written at once.
      let flooding: Flood | undefined;
      call.on("data", (req: PRequest) => {
        state.seen.push(req.model_name);
        if (req.model_name === "flood-model") {
          flooding = flood(call, req, state);
          return;
        }
        if (refuse(req.model_name)) {
          call.write({ error_message: `model '${req.model_name}' cannot stream` });
          return;
        }
        for (let i = 0; i < 3; i++) {
          const res = answer(req);
          res.outputs.push(output("chunk", { datatype: "INT32", shape: [1], values: [i] }));
          call.write({ infer_response: res });
        }
      });
      call.on("end", () => {
        if (flooding === undefined) call.end();
      });
    },
  };
}
