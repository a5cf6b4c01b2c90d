/** The client's REST transport: OIP and the seed's `/infer` routes over a pooled keep-alive connection set (undici). */
import { Pool } from "undici";
import { AnyServeError } from "../errors.js";
import { capabilityToHeaders, type CapabilityMap } from "../protocol/capability.js";
import { HEADER_INFERENCE_LENGTH, type InferRequest, type InferResponse } from "../protocol/types.js";
import type { ClientTransport, InferOptions } from "./client.js";
import { readSse } from "./sse-reader.js";
import { trustedCas } from "../util/tls.js";
import { failoverOf } from "../util/api-servers.js";
import { decodeAnswer, encodeCall, errorFromBody } from "./wire.js";

/** REST over a pooled keep-alive connection set (undici). */
export class RestTransport implements ClientTransport {
  readonly #pool: Pool;
  /** `Authorization` for every call, when the server has an inference token. */
  readonly #auth: Record<string, string>;

  constructor(url: string, connections: number, o: { inferenceToken?: string | undefined; ca?: string | Buffer | undefined } = {}) {
    const ca = trustedCas(o.ca);
    this.#pool = new Pool(new URL(url).origin, { connections, keepAliveTimeout: 30_000, ...(ca ? { connect: { ca } } : {}) });
    this.#auth = o.inferenceToken ? { authorization: `Bearer ${o.inferenceToken}` } : {};
  }

  async infer(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): Promise<InferResponse> {
    const res = await this.#post("/infer", query, req, o);
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200) throw errorFromBody(res.statusCode, body);
    const hl = res.headers[HEADER_INFERENCE_LENGTH];
    return decodeAnswer(body, String(res.headers["content-type"] ?? "application/json"), hl === undefined ? undefined : Number(hl));
  }

  async *stream(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): AsyncIterable<InferResponse> {
    const res = await this.#post("/infer/stream", query, req, o);
    if (res.statusCode !== 200) throw errorFromBody(res.statusCode, Buffer.from(await res.body.arrayBuffer()));
    for await (const data of readSse(res.body)) {
      yield decodeAnswer(Buffer.from(data), "application/json", undefined);
    }
  }

  async isAlive(): Promise<boolean> {
    return this.#get("/v2/health/live");
  }

  async isModelReady(name: string, version?: string): Promise<boolean> {
    const v = version === undefined ? "" : `/versions/${encodeURIComponent(version)}`;
    return this.#get(`/v2/models/${encodeURIComponent(name)}${v}/ready`);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  async #get(path: string): Promise<boolean> {
    try {
      const res = await this.#pool.request({ method: "GET", path, headers: this.#auth, headersTimeout: 5_000, bodyTimeout: 5_000 });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  #post(path: string, query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }) {
    const enc = encodeCall(req, o.binary);
    const headers: Record<string, string> = {
      ...capabilityToHeaders(query),
      "content-type": enc.contentType,
      "x-anyserve-timeout-ms": String(Math.max(1, Math.round(o.timeout))),
      ...this.#auth,
      ...o.headers,
    };
    if (enc.headerLength !== undefined) headers[HEADER_INFERENCE_LENGTH] = String(enc.headerLength);
    const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeout + 1_000)]) : AbortSignal.timeout(o.timeout + 1_000);
    return this.#pool.request({ method: "POST", path, headers, body: enc.body, signal }).catch((err: unknown) => {
      throw transportError(err, o.timeout);
    });
  }
}

function transportError(err: unknown, timeout: number): AnyServeError {
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === "TimeoutError" || e.name === "AbortError") {
    return e.name === "TimeoutError"
      ? new AnyServeError("DEADLINE_EXCEEDED", `no answer within ${timeout} ms`)
      : new AnyServeError("CANCELLED", "the call was cancelled");
  }
  // Before any byte of the answer (the response's headers had not arrived): see sdk/retry.ts.
  // `connectFailed`: the request never left this process (util/api-servers.ts may send it elsewhere).
  const f = failoverOf(err);
  return new AnyServeError("REPLICA_UNREACHABLE", `cannot reach the server: ${e.code ?? ""} ${e.message ?? String(err)}`.trim(), {
    connectionLost: true,
    ...(f?.delivered === false ? { connectFailed: true } : {}),
  });
}
