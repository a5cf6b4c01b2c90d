/**
 * `ctx.call` / `ctx.callStream`: a handler calls another capability like any client, within its
 * own remaining time; when its request is aborted, the call is too. Inputs may be JS values, typed
 * arrays, Buffers or ObjRef strings; results come back decoded.
 *
 * Calls take the direct path by default (docs/routing.md, "Direct path"): the replica already
 * knows its API server (and token), so it keeps the route table and calls the callee's replica
 * itself, through the API server only when that cannot be done. `ANYSERVE_DIRECT_CALLS=0` (or
 * `direct: false`) sends every call through the API server.
 */
import { AFFINITY_HEADER } from "../protocol/call.js";
import type { CapabilityMap } from "../protocol/capability.js";
import type { InferRequest, InferResponse } from "../protocol/types.js";
import { Client, type ClientOptions, type InferOptions } from "./client.js";
import type { Caller, CallOptions } from "./context.js";
import type { ApiServers } from "../util/api-servers.js";
import type { Logger } from "../util/log.js";

export interface ApiServerCallerOptions {
  /** The API server's control-plane token, for the route table (replicas are shown the peer key derived from it). */
  token?: string | undefined;
  /** The deployment's inference token, when it has one. */
  inferenceToken?: string | undefined;
  /** CA bundle for an API server and replicas that serve TLS. */
  ca?: string | Buffer | undefined;
  /** Call replicas directly; default true unless `ANYSERVE_DIRECT_CALLS=0`. */
  direct?: boolean;
  /** Where a switch to another API server is logged (warn). */
  logger?: Pick<Logger, "warn"> | undefined;
}

/**
 * Builds its {@link Client} on the first call: a worker whose handlers never call another
 * capability loads no HTTP client, no route table and no frame client.
 */
export class ApiServerCaller implements Caller {
  readonly #options: ClientOptions;
  #client: Client | undefined;

  /**
   * `apiServer`: the deployment's API servers — one URL, several (calls fail over from one to the
   * next: util/api-servers.ts), or the replica's {@link ApiServers}, shared with its delegation and
   * object look-ups so that a dead API server found by one is left by all.
   */
  constructor(apiServer: string | readonly string[] | ApiServers, o: ApiServerCallerOptions = {}) {
    // Decided now, as the process's environment is when the replica or worker starts.
    const direct = o.direct ?? process.env.ANYSERVE_DIRECT_CALLS !== "0";
    this.#options = {
      apiServer,
      connections: 8,
      direct,
      ...(o.token ? { token: o.token } : {}),
      ...(o.inferenceToken ? { inferenceToken: o.inferenceToken } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.logger ? { logger: o.logger } : {}),
    };
  }

  call(capability: CapabilityMap, inputs: unknown, o: CallOptions & { timeout: number; signal?: AbortSignal }): Promise<unknown> {
    return this.#use().infer(capability, inputs, inferOptions(o));
  }

  callRaw(
    capability: CapabilityMap,
    request: InferRequest,
    o: { timeout: number; signal?: AbortSignal; affinity?: string },
  ): Promise<InferResponse> {
    return this.#use().inferRaw(capability, request.inputs, rawOptions(request, o));
  }

  callStream(
    capability: CapabilityMap,
    inputs: unknown,
    o: CallOptions & { timeout: number; signal?: AbortSignal },
  ): AsyncIterable<unknown> {
    return this.#use().stream(capability, inputs, inferOptions(o));
  }

  callStreamRaw(
    capability: CapabilityMap,
    request: InferRequest,
    o: { timeout: number; signal?: AbortSignal; affinity?: string },
  ): AsyncIterable<InferResponse> {
    return this.#use().streamRaw(capability, request.inputs, rawOptions(request, o));
  }

  async close(): Promise<void> {
    await this.#client?.close();
  }

  #use(): Client {
    this.#client ??= new Client(this.#options);
    return this.#client;
  }
}

function inferOptions(o: CallOptions & { timeout: number; signal?: AbortSignal }): InferOptions {
  return {
    timeout: o.timeout,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.affinity !== undefined ? { headers: { [AFFINITY_HEADER]: o.affinity } } : {}),
  };
}

/** The options of a call with a whole request (`callRaw`, `callStreamRaw`): its parameters and id travel as given. */
function rawOptions(request: InferRequest, o: { timeout: number; signal?: AbortSignal; affinity?: string }): InferOptions {
  return {
    ...inferOptions(o),
    ...(request.parameters ? { parameters: request.parameters } : {}),
    ...(request.id !== undefined ? { id: request.id } : {}),
  };
}
