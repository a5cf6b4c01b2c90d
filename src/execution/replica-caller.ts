/**
 * `ctx.call` and `ctx.callStream` in a Node worker process: the call goes to the replica as a CALL
 * (CALL_STREAM) message and the replica makes it with its own caller — its inference token, CA,
 * route table and API servers — bound to the job's abort (worker-requests.ts). A worker process
 * holds no secret of the replica's, so calling the API server itself it would be refused wherever
 * an inference token is required. Python workers call the same way.
 *
 * A streaming call's chunks come back as CALL_CHUNKs within a window (WORKER_STREAM_WINDOW_BYTES):
 * the bytes the handler has taken go back as CALL_CREDIT, so a handler that reads slowly holds the
 * upstream stream back instead of filling the replica. Leaving the loop early (break, return, a
 * throw), the handler's abort and the job's end send CALL_CANCEL: the upstream call is cancelled.
 */
import { AnyServeError } from "../errors.js";
import type { CapabilityMap } from "../protocol/capability.js";
import { decodeJsonResponse, encodeJsonRequest } from "../protocol/json-codec.js";
import { inputsToRequest, responseToValue } from "../protocol/value-messages.js";
import type { CallOptions, Caller } from "../sdk/context.js";
import { chunkCost } from "../transport/frames.js";
import { errorOf, Msg, WORKER_STREAM_WINDOW_BYTES, type Meta } from "./worker-protocol.js";
import { ReplicaRequests } from "./replica-requests.js";

export interface ReplicaCallerOptions {
  /** Sends one message to the replica now. */
  send: (type: number, id: number, meta: Meta, body: Buffer) => void;
  /** The job running now: the replica binds the call to its abort. */
  job: () => number | undefined;
}

type CallStreamOptions = CallOptions & { timeout: number; signal?: AbortSignal };

/** A CALL_STREAM as the worker holds it: chunks received and not yet taken, and how it ended. */
class Incoming {
  readonly chunks: { meta: Meta; body: Buffer }[] = [];
  /** Set by CALL_END (`null`: ended well) or by a cancel here. */
  end: AnyServeError | null | undefined;
  wake: (() => void) | undefined;

  constructor(readonly job: number | undefined) {}

  push(meta: Meta, body: Buffer): void {
    if (this.end !== undefined) return;
    this.chunks.push({ meta, body });
    this.#wake();
  }

  /** CALL_END: the chunks before it are still read, then `err` (null: the end). */
  finish(err: AnyServeError | null): void {
    if (this.end === undefined) this.end = err;
    this.#wake();
  }

  /** Cancelled here: what had arrived is dropped, the next read fails with `err`. */
  cancel(err: AnyServeError): void {
    this.chunks.length = 0;
    this.finish(err);
  }

  #wake(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

const EMPTY = Buffer.alloc(0);

export class ReplicaCaller implements Caller {
  readonly #o: ReplicaCallerOptions;
  /** CALLs awaiting their CALL_RESULT; its ids (the CALL_STREAMs' too) are the worker's own space, never meeting job ids. */
  readonly #requests: ReplicaRequests;

  readonly #streams = new Map<number, Incoming>();

  constructor(o: ReplicaCallerOptions) {
    this.#o = o;
    this.#requests = new ReplicaRequests(o.send);
  }

  /** Open CALL_STREAMs (leak checks, tests). */
  get openStreams(): number {
    return this.#streams.size;
  }

  async call(capability: CapabilityMap, inputs: unknown, o: CallOptions & { timeout: number; signal?: AbortSignal }): Promise<unknown> {
    const cancelled = () => AnyServeError.from(o.signal?.reason, "CANCELLED");
    if (o.signal?.aborted) throw cancelled();
    const { meta, body } = this.#request(capability, inputs, o);
    // The replica's call is bound to the job's abort; this one settles at once when the handler's own signal fires.
    const answer = await this.#requests.ask(Msg.CALL, meta, body, o.signal, cancelled);
    return responseToValue(decodeJsonResponse(answer.body, typeof answer.meta?.hl === "number" ? answer.meta.hl : undefined));
  }

  /** A CALL's or CALL_STREAM's meta and body: every input in the binary part, exact for every datatype, as the replica answers. */
  #request(capability: CapabilityMap, inputs: unknown, o: CallStreamOptions): { meta: Record<string, unknown>; body: Buffer } {
    const encoded = encodeJsonRequest(inputsToRequest(inputs), { binary: true });
    const meta = {
      job: this.#o.job() ?? null,
      q: capability,
      timeout: o.timeout,
      ct: encoded.contentType,
      ...(encoded.headerLength !== undefined ? { hl: encoded.headerLength } : {}),
      ...(o.affinity !== undefined ? { aff: o.affinity } : {}),
    };
    return { meta, body: encoded.body };
  }

  /**
   * `ctx.callStream`: CALL_STREAM, sent when the handler starts iterating; yields each chunk as it
   * comes, granting its bytes back (CALL_CREDIT, by half windows) once the handler took it.
   */
  async *callStream(capability: CapabilityMap, inputs: unknown, o: CallStreamOptions): AsyncGenerator<unknown> {
    const signal = o.signal;
    if (signal?.aborted) throw AnyServeError.from(signal.reason, "CANCELLED");
    const { meta, body } = this.#request(capability, inputs, o);
    const id = this.#requests.nextId();
    const s = new Incoming(typeof meta.job === "number" ? meta.job : undefined);
    const onAbort = (): void => s.cancel(AnyServeError.from(signal?.reason, "CANCELLED"));
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#streams.set(id, s);
    this.#o.send(Msg.CALL_STREAM, id, { ...meta, w: WORKER_STREAM_WINDOW_BYTES }, body);
    let taken = 0;
    try {
      for (;;) {
        const next = s.chunks.shift();
        if (next !== undefined) {
          const value = responseToValue(decodeJsonResponse(next.body, typeof next.meta?.hl === "number" ? next.meta.hl : undefined));
          taken += chunkCost(next.body);
          if (taken >= WORKER_STREAM_WINDOW_BYTES / 2) {
            this.#o.send(Msg.CALL_CREDIT, id, { n: taken }, EMPTY);
            taken = 0;
          }
          yield value;
        } else if (s.end !== undefined) {
          if (s.end) throw s.end;
          return;
        } else await new Promise<void>((resolve) => (s.wake = resolve));
      }
    } finally {
      // Left early (break, return, a throw, the abort): the replica cancels the upstream call.
      if (this.#streams.delete(id)) this.#o.send(Msg.CALL_CANCEL, id, null, EMPTY);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** A CALL_CHUNK or CALL_END from the replica. */
  streamed(type: number, id: number, meta: Meta, body: Buffer): void {
    const s = this.#streams.get(id);
    if (s === undefined) return; // given up on (cancelled)
    if (type === Msg.CALL_CHUNK) s.push(meta, body);
    else {
      this.#streams.delete(id);
      s.finish(errorOf(meta) ?? null);
    }
  }

  /** Job `job` ended: its streams still open are cancelled (a handler may return without finishing one). */
  jobEnded(job: number): void {
    for (const [id, s] of this.#streams) {
      if (s.job !== job) continue;
      this.#streams.delete(id);
      s.cancel(new AnyServeError("CANCELLED", "the job that made this streaming call has ended"));
      this.#o.send(Msg.CALL_CANCEL, id, null, EMPTY);
    }
  }

  /** A CALL_RESULT from the replica. */
  answer(id: number, meta: Meta, body: Buffer): void {
    this.#requests.answer(id, meta, body);
  }
}
