/**
 * `ctx.call` in a Node worker process: the call goes to the replica as a CALL message and the
 * replica makes it with its own caller — its inference token, CA, route table and API servers —
 * bound to the job's abort (worker-requests.ts). A worker process holds no secret of the
 * replica's, so calling the API server itself it would be refused wherever an inference token is
 * required. Python workers call the same way. Streaming calls (`ctx.callStream`) have no message
 * of their own yet: they go to the API server from the worker (`streams`), without a token.
 */
import { AnyServeError } from "../errors.js";
import type { CapabilityMap } from "../protocol/capability.js";
import { decodeJsonResponse, encodeJsonRequest } from "../protocol/json-codec.js";
import { inputsToRequest, responseToValue } from "../protocol/value-messages.js";
import type { CallOptions, Caller } from "../sdk/context.js";
import { errorOf, Msg, type Meta } from "./worker-protocol.js";

export interface ReplicaCallerOptions {
  /** Sends one message to the replica now. */
  send: (type: number, id: number, meta: Meta, body: Buffer) => void;
  /** The job running now: the replica binds the call to its abort. */
  job: () => number | undefined;
  /** What `callStream` uses. */
  streams?: Caller | undefined;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  done: () => void;
}

export class ReplicaCaller implements Caller {
  readonly #o: ReplicaCallerOptions;
  readonly #pending = new Map<number, Pending>();
  /** CALL ids: the worker's own id space (they never meet job ids, which travel the other way). */
  #nextId = 1;

  constructor(o: ReplicaCallerOptions) {
    this.#o = o;
    if (o.streams?.callStream) this.callStream = o.streams.callStream.bind(o.streams);
  }

  callStream?: Caller["callStream"];

  call(capability: CapabilityMap, inputs: unknown, o: CallOptions & { timeout: number; signal?: AbortSignal }): Promise<unknown> {
    if (o.signal?.aborted) return Promise.reject(AnyServeError.from(o.signal.reason, "CANCELLED"));
    let body: Buffer;
    let meta: Meta;
    try {
      // Every input in the binary part: exact for every datatype, as the replica answers.
      const encoded = encodeJsonRequest(inputsToRequest(inputs), { binary: true });
      body = encoded.body;
      meta = {
        job: this.#o.job() ?? null,
        q: capability,
        timeout: o.timeout,
        ct: encoded.contentType,
        ...(encoded.headerLength !== undefined ? { hl: encoded.headerLength } : {}),
        ...(o.affinity !== undefined ? { aff: o.affinity } : {}),
      };
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      // The replica's call is bound to the job's abort; this one settles at once when the handler's own signal fires.
      const onAbort = (): void => {
        this.#pending.get(id)?.done();
        reject(AnyServeError.from(o.signal?.reason, "CANCELLED"));
      };
      o.signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(id, {
        resolve,
        reject,
        done: () => {
          this.#pending.delete(id);
          o.signal?.removeEventListener("abort", onAbort);
        },
      });
      this.#o.send(Msg.CALL, id, meta, body);
    });
  }

  /** A CALL_RESULT from the replica. */
  answer(id: number, meta: Meta, body: Buffer): void {
    const p = this.#pending.get(id);
    if (p === undefined) return; // given up on (aborted)
    p.done();
    const err = errorOf(meta);
    if (err) {
      p.reject(err);
      return;
    }
    try {
      p.resolve(responseToValue(decodeJsonResponse(body, typeof meta?.hl === "number" ? meta.hl : undefined)));
    } catch (e) {
      p.reject(e);
    }
  }
}
