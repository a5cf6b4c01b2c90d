/**
 * The seam between the protocol front ends (REST, gRPC) and what answers them. The gateway's
 * backend forwards the body as bytes to a replica; the replica's backend dispatches to a
 * handler. Front ends only translate the wire format; routing, deadlines and errors live behind
 * this interface, so both processes share one REST and one gRPC front end.
 */
import type { CapabilityMap } from "./capability.js";
import type { EncodedBody, WireFormat } from "./types.js";
import type { CancelSignal } from "../util/cancel.js";

/** Header (REST) and metadata key (gRPC) carrying a request's affinity key. */
export const AFFINITY_HEADER = "x-anyserve-affinity";

/** One inference call as the front end hands it over: headers read, body untouched. */
export interface IncomingCall {
  /** The capability query to route/dispatch by. */
  query: CapabilityMap;
  /** The request body exactly as received. */
  body: Buffer;
  contentType?: string | undefined;
  /** Binary tensor extension: byte length of the JSON part. */
  headerLength?: number | undefined;
  /** Wire format for the answer (and for every streamed chunk). */
  format: WireFormat;
  /** Caller's remaining time in milliseconds (after which the call has failed). */
  timeoutMs: number;
  requestId: string;
  /** Fires when the caller goes away (an AbortSignal, or the cheaper Cancellation). */
  signal: CancelSignal;
  /** Delegation: hops taken so far, and replica ids already tried. */
  depth?: number;
  tried?: string[];
  /** `X-Anyserve-Affinity` header / metadata: the key the `consistent_hash` balancer keeps on one replica. */
  affinityKey?: string | undefined;
  /** Set when the model route named the model (OIP `/v2/models/{m}`), for MODEL_NOT_FOUND messages. */
  model?: { name: string; version?: string | undefined };
}

/** `model 'm'` or `model 'm' version 'v'`, for MODEL_NOT_FOUND messages. */
export function describeModel(model: { name: string; version?: string | undefined }): string {
  return model.version === undefined ? `model '${model.name}'` : `model '${model.name}' version '${model.version}'`;
}

export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs: { name: string; datatype: string; shape: number[] }[];
  /** anyserve's extension, REST only: facts about the model (the ONNX backend's execution provider, batching). */
  parameters?: Record<string, string | number | boolean>;
}

/**
 * Takes one streamed answer. Back-pressure: a returned promise means the consumer is full (the
 * client's socket needs draining, a window is used up) — the producer makes its next chunk only
 * once the promise settles. It settles when there is room again or when the call ends (cancelled,
 * cut for a client that stopped reading: the call's signal has fired then). `undefined`: go on.
 */
export type ChunkSink = (chunk: EncodedBody) => void | Promise<void>;

export interface InferBackend {
  /** One answer. Throws AnyServeError. */
  infer(call: IncomingCall): Promise<EncodedBody>;
  /**
   * Streamed answers, each encoded in `call.format` and handed to `onChunk`, which may ask the
   * producer to wait ({@link ChunkSink}); resolves after the last one. Throws AnyServeError.
   */
  stream(call: IncomingCall, onChunk: ChunkSink): Promise<void>;
  /** OIP model metadata; throws MODEL_NOT_FOUND. */
  modelMetadata(query: CapabilityMap, name: string, version?: string): Promise<ModelMetadata>;
  /** True when a handler/replica for the model can answer now. */
  modelReady(query: CapabilityMap): Promise<boolean>;
  /** Server readiness (OIP `/v2/health/ready`). */
  ready(): boolean;
}
