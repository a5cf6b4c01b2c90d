/**
 * Clients that ask and then stop reading, for the back-pressure and write-timeout tests: an SSE
 * client and a gRPC `ModelStreamInfer` client that read the first bytes of their answer and then
 * pause their socket (or HTTP/2 stream), so the server sees a client whose socket fills up; and
 * the resident size of a process, read from /proc.
 */
import http2 from "node:http2";
import { connect, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import { encodeProtoRequest } from "../../src/protocol/proto-codec.js";
import { inputsToRequest } from "../../src/protocol/values.js";
import { waitFor } from "./processes.js";

/** Resident memory of process `pid`, MB (Linux /proc). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** What a paused client can tell once it reads again: whether the server closed, and how much came. */
export interface Drained {
  /** The server ended or reset the connection. */
  closed: boolean;
  bytes: number;
}

/** A client that stopped reading; `drain` reads on until the server closes (or `timeoutMs` passes). */
export interface PausedClient {
  /** Bytes read before it paused. */
  readonly first: number;
  drain(timeoutMs?: number): Promise<Drained>;
  destroy(): void;
}

/**
 * Sends one raw HTTP/1.1 request over its own socket, reads until `minBytes` of answer came, then
 * stops reading (the kernel buffers fill, then the server's socket).
 */
export function pausedHttpClient(port: number, request: string, minBytes = 1): Promise<PausedClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1");
    let got = 0;
    let closed = false;
    socket.on("error", () => undefined);
    socket.on("close", () => {
      closed = true;
    });
    const onData = (chunk: Buffer): void => {
      got += chunk.length;
      if (got < minBytes) return;
      socket.off("data", onData);
      socket.pause();
      const first = got;
      resolve({
        first,
        drain: (timeoutMs = 10_000) => drainSocket(socket, () => closed, timeoutMs),
        destroy: () => socket.destroy(),
      });
    };
    socket.on("data", onData);
    socket.once("close", () => {
      if (got < minBytes) reject(new Error(`closed after ${got} bytes, before ${minBytes} came`));
    });
    socket.write(request);
  });
}

async function drainSocket(socket: Socket, isClosed: () => boolean, timeoutMs: number): Promise<Drained> {
  let bytes = 0;
  socket.on("data", (c: Buffer) => {
    bytes += c.length;
  });
  socket.resume();
  await waitFor("the server to close the connection", isClosed, timeoutMs).catch(() => undefined);
  const closed = isClosed();
  socket.destroy();
  return { closed, bytes };
}

/** An SSE request (`POST /infer/stream`) for capability `{type, at}`, JSON body with one BYTES input. */
export function sseRequest(type: string, requestId: string, at: string, path = "/infer/stream"): string {
  const body = JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["go"] }] });
  return (
    `POST ${path} HTTP/1.1\r\nHost: t\r\nX-Capability-Type: ${type}\r\nX-Capability-At: ${at}\r\nX-Request-Id: ${requestId}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** A streamed OpenAI chat completion (`POST /v1/chat/completions`, `stream: true`) of `model`. */
export function openAiStreamRequest(model: string, requestId: string): string {
  const body = JSON.stringify({ model, messages: [{ role: "user", content: "go" }], stream: true });
  return (
    `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-Request-Id: ${requestId}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** One gRPC message frame: compressed flag, big-endian length, the message. */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/**
 * Opens `ModelStreamInfer` on `address` (host:port) with `metadata` (e.g. x-capability-type),
 * sends one request, reads `minBytes` of answer and pauses the HTTP/2 stream: no more window
 * updates, so the server's stream fills.
 */
export function pausedGrpcStream(address: string, metadata: Record<string, string>, minBytes = 1): Promise<PausedClient> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on("error", () => undefined);
    const stream = session.request({
      ":method": "POST",
      ":path": "/inference.GRPCInferenceService/ModelStreamInfer",
      "content-type": "application/grpc",
      te: "trailers",
      ...metadata,
    });
    let got = 0;
    let closed = false;
    stream.on("error", () => undefined);
    stream.on("close", () => {
      closed = true;
      if (got < minBytes) reject(new Error(`stream closed after ${got} bytes (rst ${stream.rstCode})`));
    });
    const onData = (chunk: Buffer): void => {
      got += chunk.length;
      if (got < minBytes) return;
      stream.off("data", onData);
      stream.pause();
      resolve({
        first: got,
        async drain(timeoutMs = 10_000) {
          let bytes = 0;
          stream.on("data", (c: Buffer) => {
            bytes += c.length;
          });
          stream.resume();
          await waitFor("the server to end the stream", () => closed, timeoutMs).catch(() => undefined);
          const result = { closed, bytes };
          session.destroy();
          return result;
        },
        destroy: () => session.destroy(),
      });
    };
    stream.on("data", onData);
    stream.write(grpcFrame(encodeProtoRequest(inputsToRequest({ text: "go" }))));
  });
}
