/**
 * The `inference.GRPCInferenceService` definition, shared by the gRPC front end (server side) and
 * the client's gRPC transport: raw-byte (identity) methods for `ModelInfer` and
 * `ModelStreamInfer`, protobufjs-decoded ones for the small health and metadata RPCs. Only grpc-js
 * *types* are imported here; whoever uses the definition has loaded grpc-js already.
 */
import type * as grpc from "@grpc/grpc-js";
import { protoTypes } from "./proto-codec.js";

const SERVICE = "/inference.GRPCInferenceService/";
const identity = (b: Buffer): Buffer => b;

function method(name: string, stream: boolean, req?: string, res?: string): grpc.MethodDefinition<unknown, unknown> {
  const root = protoTypes().root;
  const reqType = req ? root.lookupType(req) : undefined;
  const resType = res ? root.lookupType(res) : undefined;
  return {
    path: SERVICE + name,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: reqType
      ? (v: unknown) => Buffer.from(reqType.encode(reqType.fromObject(v as object)).finish())
      : (identity as (v: unknown) => Buffer),
    requestDeserialize: reqType ? (b: Buffer) => reqType.toObject(reqType.decode(b), { defaults: true }) : identity,
    responseSerialize: resType
      ? (v: unknown) => Buffer.from(resType.encode(resType.fromObject(v as object)).finish())
      : (identity as (v: unknown) => Buffer),
    responseDeserialize: resType ? (b: Buffer) => resType.toObject(resType.decode(b), { defaults: true }) : identity,
  };
}

/** The service definition; raw-byte methods for inference, decoded ones for the rest. */
export function serviceDefinition(): grpc.ServiceDefinition {
  return {
    ServerLive: method("ServerLive", false, "inference.ServerLiveRequest", "inference.ServerLiveResponse"),
    ServerReady: method("ServerReady", false, "inference.ServerReadyRequest", "inference.ServerReadyResponse"),
    ModelReady: method("ModelReady", false, "inference.ModelReadyRequest", "inference.ModelReadyResponse"),
    ServerMetadata: method("ServerMetadata", false, "inference.ServerMetadataRequest", "inference.ServerMetadataResponse"),
    ModelMetadata: method("ModelMetadata", false, "inference.ModelMetadataRequest", "inference.ModelMetadataResponse"),
    ModelInfer: method("ModelInfer", false),
    ModelStreamInfer: method("ModelStreamInfer", true),
  };
}
