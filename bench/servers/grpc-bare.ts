/**
 * The gRPC scenarios' baseline: a bare grpc-js server answering `ModelInfer` the way a plain
 * grpc-js service would — decode the ModelInferRequest (protobufjs, as @grpc/proto-loader does),
 * build an answer per request and encode it — with the same answer the noop handler gives through
 * the full path (model name, one BOOL output `ok` in raw contents): the same 30 bytes. The gRPC
 * counterpart of bare.ts. Run as a
 * child of bench/run.ts; reports `{ address }` over IPC and exits when the parent goes.
 */
import * as grpc from "@grpc/grpc-js";
import { InferRequest, InferResponse, MODEL_INFER } from "../lib/oip-proto.js";

interface Request {
  model_name?: string;
  id?: string;
  inputs?: unknown[];
}

const server = new grpc.Server();
server.addService(
  {
    ModelInfer: {
      path: MODEL_INFER,
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: unknown) => Buffer.from(InferRequest.encode(v as Request).finish()),
      requestDeserialize: (b: Buffer) => InferRequest.toObject(InferRequest.decode(b)) as Request,
      responseSerialize: (v: unknown) => Buffer.from(InferResponse.encode(InferResponse.fromObject(v as object)).finish()),
      responseDeserialize: (b: Buffer) => InferResponse.toObject(InferResponse.decode(b)),
    },
  },
  {
    ModelInfer: (call: grpc.ServerUnaryCall<Request, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const req = call.request;
      cb(null, {
        model_name: req.model_name ?? "",
        ...(req.id ? { id: req.id } : {}),
        // Raw contents, as anyserve encodes every output: the same answer bytes as the full path.
        outputs: [{ name: "ok", datatype: "BOOL", shape: [1] }],
        raw_output_contents: [Buffer.from([Array.isArray(req.inputs) ? 1 : 0])],
      });
    },
  },
);

server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.send!({ address: `127.0.0.1:${port}` });
});
process.on("disconnect", () => {
  server.forceShutdown();
  process.exit(0);
});
