/**
 * A seeded gRPC fuzzer for the suite: malformed calls to every method of the OIP service —
 * garbage bytes, valid messages with fields of the wrong wire type, cut short or with invalid
 * UTF-8, values out of range, huge messages, hostile metadata — and a raw client that sends one
 * case and reports the status and trailers it got. The same seed gives the same cases; a failure
 * prints the seed and index (`grpcCaseAt(seed, i)`).
 */
import * as grpc from "@grpc/grpc-js";
import { protoTypes } from "../../src/protocol/proto-codec.js";
import { rng } from "./http-fuzz.js";

export const GRPC_METHODS = [
  "ServerLive",
  "ServerReady",
  "ModelReady",
  "ServerMetadata",
  "ModelMetadata",
  "ModelInfer",
  "ModelStreamInfer",
] as const;
export type GrpcMethod = (typeof GRPC_METHODS)[number];

export interface GrpcCase {
  name: string;
  method: GrpcMethod;
  /** The messages sent (one for unary methods; one or more for the stream). */
  messages: Buffer[];
  metadata: [string, string | Buffer][];
}

/** A valid message of each method's request type (the fuzz_app's `echo` model). */
function validMessage(method: GrpcMethod): Buffer {
  const root = protoTypes().root;
  const enc = (type: string, o: Record<string, unknown>): Buffer => {
    const t = root.lookupType(`inference.${type}`);
    return Buffer.from(t.encode(t.fromObject(o)).finish());
  };
  switch (method) {
    case "ModelReady":
      return enc("ModelReadyRequest", { name: "echo" });
    case "ModelMetadata":
      return enc("ModelMetadataRequest", { name: "echo" });
    case "ModelInfer":
    case "ModelStreamInfer":
      return enc("ModelInferRequest", {
        model_name: "echo",
        inputs: [{ name: "text", datatype: "BYTES", shape: [1], contents: { bytes_contents: [Buffer.from("fuzz")] } }],
      });
    default:
      return enc(`${method}Request`, {});
  }
}

/** A protobuf field: tag and wire type, then the payload as that wire type wants it. */
function field(no: number, wire: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((no << 3) | wire), payload]);
}
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}
function lengthDelimited(no: number, payload: Buffer): Buffer {
  return field(no, 2, Buffer.concat([varint(payload.length), payload]));
}

type Rand = () => number;
const pick = <T>(r: Rand, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
const int = (r: Rand, min: number, max: number): number => min + Math.floor(r() * (max - min + 1));
const bytes = (r: Rand, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));

/** Mutations of a method's message, by name. */
const MUTATIONS: Record<string, (m: Buffer, r: Rand) => Buffer> = {
  garbage: (_m, r) => bytes(r, int(r, 0, 256)),
  truncated: (m, r) => m.subarray(0, int(r, 0, Math.max(0, m.length - 1))),
  flipped: (m, r) => {
    const out = Buffer.from(m);
    for (let i = 0; i < int(r, 1, 4) && out.length > 0; i++) out[int(r, 0, out.length - 1)]! ^= 1 << int(r, 0, 7);
    return out;
  },
  // Field 1 (a name) as a varint, and as a fixed64: a wire type the schema does not expect.
  wrongWireType: (m, r) => Buffer.concat([m, r() < 0.5 ? field(1, 0, varint(int(r, 0, 1e6))) : field(1, 1, bytes(r, 8))]),
  // A string field that is not UTF-8.
  badUtf8: (m) => Buffer.concat([m, lengthDelimited(1, Buffer.from([0xff, 0xfe, 0xc3, 0x28]))]),
  // A length prefix far past the end of the message.
  overlongLength: (m) => Buffer.concat([m, field(5, 2, varint(0x7fffffff)), Buffer.from("x")]),
  // An unknown field with a large payload, and deep nesting.
  unknownField: (m, r) => Buffer.concat([m, lengthDelimited(int(r, 20, 500), bytes(r, int(r, 0, 4096)))]),
  // ModelInferRequest-shaped trouble: inputs with bad shapes and datatypes, raw contents that do not match.
  badTensor: (m, r) => {
    const t = protoTypes().request;
    const shape = pick(r, [[-1], [1e12], [], [2, 2], [0], [3]]);
    const datatype = pick(r, ["BYTES", "FP32", "INT8", "BOGUS", "", "UINT64"]);
    const o: Record<string, unknown> = { model_name: "echo", inputs: [{ name: pick(r, ["text", "", "x".repeat(300)]), datatype, shape }] };
    if (r() < 0.5) o.raw_input_contents = [bytes(r, int(r, 0, 64)), bytes(r, 3)];
    return r() < 0.3
      ? Buffer.concat([m, Buffer.from(t.encode(t.fromObject(o)).finish())])
      : Buffer.from(t.encode(t.fromObject(o)).finish());
  },
  huge: (m, r) => Buffer.concat([m, lengthDelimited(99, Buffer.alloc(pick(r, [1 << 20, 6 << 20]), 0x61))]),
};

const METADATA: [string, () => string | Buffer][] = [
  ["x-capability-type", () => "echo"],
  ["x-capability-type", () => "x".repeat(300)],
  ["x-capability-type", () => ""],
  ["x-capability-type-bin", () => Buffer.from([0xff, 0x00, 0x01])],
  ["x-capability-", () => "v"],
  ["x-anyserve-timeout-ms", () => "-5"],
  ["x-anyserve-timeout-ms", () => "99999999999999"],
  ["x-request-id", () => "r".repeat(1000)],
  ["grpc-timeout", () => "1n"],
];

/** Case `index` of the campaign `seed`: one to two mutations of a valid message to some method, maybe hostile metadata. */
export function grpcCaseAt(seed: number, index: number): GrpcCase {
  const r = rng((seed ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
  const method = pick(r, GRPC_METHODS);
  let message = validMessage(method);
  const names: string[] = [method];
  for (let i = int(r, 1, 2); i > 0; i--) {
    const name = pick(r, Object.keys(MUTATIONS));
    message = MUTATIONS[name]!(message, r);
    names.push(name);
  }
  const metadata: [string, string | Buffer][] = [];
  if (r() < 0.4) {
    const [k, v] = pick(r, METADATA);
    // grpc-js refuses some keys or values client-side; those are left out, not sent.
    metadata.push([k, v()]);
    names.push(`metadata ${k}`);
  }
  const messages = method === "ModelStreamInfer" && r() < 0.3 ? [message, validMessage(method)] : [message];
  return { name: names.join(" + "), method, messages, metadata };
}

/** What the server said to a case: its status code, details and trailers. */
export interface GrpcOutcome {
  code: grpc.status;
  details: string;
  /** `x-anyserve-code` from the trailers (or headers), when there. */
  anyserveCode: string | undefined;
}

/** Sends `c` to `address` with `client` (one per address, reused) and resolves with the final status. */
export function grpcExchange(client: grpc.Client, c: GrpcCase, deadlineMs = 10_000): Promise<GrpcOutcome> {
  const md = new grpc.Metadata();
  for (const [k, v] of c.metadata) {
    try {
      md.add(k, v);
    } catch {
      // A key or value grpc-js will not send: the case goes without it.
    }
  }
  const path = `/inference.GRPCInferenceService/${c.method}`;
  const id = (b: Buffer): Buffer => b;
  const options = { deadline: Date.now() + deadlineMs };
  return new Promise((resolve) => {
    let headerCode: string | undefined;
    const onStatus = (s: grpc.StatusObject): void => {
      const fromTrailers = s.metadata.get("x-anyserve-code")[0];
      resolve({ code: s.code, details: s.details, anyserveCode: fromTrailers === undefined ? headerCode : String(fromTrailers) });
    };
    const onMetadata = (m: grpc.Metadata): void => {
      const v = m.get("x-anyserve-code")[0];
      if (v !== undefined) headerCode = String(v);
    };
    if (c.method === "ModelStreamInfer") {
      const call = client.makeBidiStreamRequest(path, id, id, md, options);
      call.on("data", () => undefined);
      call.on("error", () => undefined);
      call.on("metadata", onMetadata);
      call.on("status", onStatus);
      for (const m of c.messages) call.write(m);
      call.end();
    } else {
      const call = client.makeUnaryRequest(path, id, id, c.messages[0]!, md, options, () => undefined);
      call.on("metadata", onMetadata);
      call.on("status", onStatus);
    }
  });
}
