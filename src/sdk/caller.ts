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
import type { CapabilityMap } from "../protocol/capability.js";
import { Client } from "./client.js";
import type { Caller, CallOptions } from "./context.js";

export interface ApiServerCallerOptions {
  /** The API server's control-plane token, for the route table and the replicas' frame endpoints. */
  token?: string | undefined;
  /** Call replicas directly; default true unless `ANYSERVE_DIRECT_CALLS=0`. */
  direct?: boolean;
}

export class ApiServerCaller implements Caller {
  readonly #client: Client;

  constructor(apiServer: string, o: ApiServerCallerOptions = {}) {
    const direct = o.direct ?? process.env.ANYSERVE_DIRECT_CALLS !== "0";
    this.#client = new Client({ apiServer, connections: 8, direct, ...(o.token ? { token: o.token } : {}) });
  }

  call(capability: CapabilityMap, inputs: unknown, o: CallOptions & { timeout: number; signal?: AbortSignal }): Promise<unknown> {
    return this.#client.infer(capability, inputs, { timeout: o.timeout, ...(o.signal ? { signal: o.signal } : {}) });
  }

  callStream(
    capability: CapabilityMap,
    inputs: unknown,
    o: CallOptions & { timeout: number; signal?: AbortSignal },
  ): AsyncIterable<unknown> {
    return this.#client.stream(capability, inputs, { timeout: o.timeout, ...(o.signal ? { signal: o.signal } : {}) });
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}
