/**
 * `ctx.call` / `ctx.callStream`: a handler calls another capability through the API server's
 * router, like any client, within its own remaining time; when its request is aborted, the call is
 * too. Inputs may be JS values, typed arrays, Buffers or ObjRef strings; results come back decoded.
 */
import type { CapabilityMap } from "../protocol/capability.js";
import { Client } from "./client.js";
import type { Caller, CallOptions } from "./context.js";

export class ApiServerCaller implements Caller {
  readonly #client: Client;

  constructor(apiServer: string) {
    this.#client = new Client({ apiServer, connections: 8 });
  }

  call(capability: CapabilityMap, inputs: unknown, o: CallOptions & { timeout: number; signal?: AbortSignal }): Promise<unknown> {
    return this.#client.infer(capability, inputs, { timeout: o.timeout, ...(o.signal ? { signal: o.signal } : {}) });
  }

  callStream(capability: CapabilityMap, inputs: unknown, o: CallOptions & { timeout: number; signal?: AbortSignal }): AsyncIterable<unknown> {
    return this.#client.stream(capability, inputs, { timeout: o.timeout, ...(o.signal ? { signal: o.signal } : {}) });
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}
