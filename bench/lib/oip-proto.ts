/**
 * The OIP v2 gRPC messages of the gRPC scenarios, loaded with protobufjs from the repository's
 * proto/grpc_predict_v2.proto — what a plain grpc-js server or client would use, nothing of
 * anyserve's own codec. Shared by the bare grpc-js server and the gRPC load generator.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

const PROTO = fileURLToPath(new URL("../../proto/grpc_predict_v2.proto", import.meta.url));
const root = new protobuf.Root().loadSync(path.normalize(PROTO), { keepCase: true });

export const InferRequest = root.lookupType("inference.ModelInferRequest");
export const InferResponse = root.lookupType("inference.ModelInferResponse");

/** The unary inference method's path. */
export const MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer";
/** The model both gRPC scenarios call: the noop app serves it as capability `{model: noop-model}`. */
export const GRPC_MODEL = "noop-model";

/**
 * The request of the gRPC scenarios: a ModelInferRequest of `bytes` bytes on the wire (model
 * `noop-model`, one BYTES input padded to size), like the REST scenarios' 222-byte JSON request.
 */
export function grpcRequestBody(bytes = 222): Buffer {
  const make = (pad: string): Buffer =>
    Buffer.from(
      InferRequest.encode(
        InferRequest.fromObject({
          model_name: GRPC_MODEL,
          inputs: [{ name: "text", datatype: "BYTES", shape: [1], contents: { bytes_contents: [Buffer.from(pad)] } }],
        }),
      ).finish(),
    );
  // Length prefixes grow by a byte past 127, so converge instead of computing the padding once.
  let pad = bytes - make("").length;
  for (let i = 0; i < 4; i++) pad += bytes - make("x".repeat(Math.max(0, pad))).length;
  const body = make("x".repeat(Math.max(0, pad)));
  if (body.length !== bytes) throw new Error(`gRPC request is ${body.length} bytes, wanted ${bytes}`);
  return body;
}
