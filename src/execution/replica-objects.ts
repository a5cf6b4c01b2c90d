/**
 * `ctx.objects` in a Node worker process, for objects owned by another replica: read through the
 * replica as FETCH messages (docs/worker-protocol.md), as Python workers do. A worker process holds
 * none of the replica's credentials (process-handle.ts), so it could neither look the owner up in
 * the API server's registry nor show the owner's object endpoint the peer key under a
 * control-plane token — the default under `up`. The replica reads with its own store: its peers,
 * its token, its cache (`object_store.cache`, in the directory this worker shares).
 * Objects in the shared directory are still read here, from the file.
 */
import { AnyServeError } from "../errors.js";
import type { StoredObject } from "../objects/backends/base.js";
import type { RemoteObjects } from "../objects/types.js";
import { errorOf, Msg, type Meta } from "./worker-protocol.js";

interface Pending {
  resolve: (answer: { meta: Meta; body: Buffer }) => void;
  reject: (err: unknown) => void;
}

export class ReplicaObjects implements RemoteObjects {
  readonly #send: (type: number, id: number, meta: Meta, body?: Buffer) => void;
  readonly #pending = new Map<number, Pending>();
  /** FETCH ids: their own id space (FETCHED answers never meet CALL_RESULTs or job ids). */
  #nextId = 1;

  /** `send`: one message to the replica, now. */
  constructor(send: (type: number, id: number, meta: Meta, body?: Buffer) => void) {
    this.#send = send;
  }

  async stat(ref: string, signal: AbortSignal): Promise<StoredObject> {
    return storedOf((await this.#fetch(ref, "stat", signal)).meta, ref);
  }

  async read(ref: string, signal: AbortSignal): Promise<{ info: StoredObject; bytes: Buffer }> {
    const { meta, body } = await this.#fetch(ref, "get", signal);
    const info = storedOf(meta, ref);
    if (body.length !== info.size) {
      throw new AnyServeError("INTERNAL", `object ${info.id}: the replica sent ${body.length} bytes for an object of ${info.size}`);
    }
    return { info, bytes: body };
  }

  /** A FETCHED from the replica. */
  answer(id: number, meta: Meta, body: Buffer): void {
    const p = this.#pending.get(id);
    if (p === undefined) return; // given up on (aborted)
    this.#pending.delete(id);
    const err = errorOf(meta);
    if (err) p.reject(err);
    else p.resolve({ meta, body });
  }

  #fetch(ref: string, op: "stat" | "get", signal: AbortSignal): Promise<{ meta: Meta; body: Buffer }> {
    if (signal.aborted) return Promise.reject(abortError(signal, ref));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      // The replica's read goes on; its answer, when it comes, finds no one waiting and is dropped.
      const onAbort = (): void => {
        this.#pending.delete(id);
        reject(abortError(signal, ref));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const settle =
        <T>(f: (v: T) => void) =>
        (v: T): void => {
          signal.removeEventListener("abort", onAbort);
          f(v);
        };
      this.#pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
      this.#send(Msg.FETCH, id, { ref, op });
    });
  }
}

/** The object's metadata as the replica's store answered it (its ObjectInfo, without the ref). */
function storedOf(meta: Meta, ref: string): StoredObject {
  const m = meta ?? {};
  if (typeof m.id !== "string" || typeof m.size !== "number" || typeof m.contentType !== "string" || typeof m.created !== "number") {
    throw new AnyServeError(
      "INTERNAL",
      `object ${ref}: the replica's answer carries no object info (got ${JSON.stringify(m).slice(0, 120)})`,
    );
  }
  return {
    id: m.id,
    size: m.size,
    contentType: m.contentType,
    created: m.created,
    ...(typeof m.ttl === "number" ? { ttl: m.ttl } : {}),
    ...(typeof m.owner === "string" ? { owner: m.owner } : {}),
    ...(typeof m.url === "string" ? { url: m.url } : {}),
  };
}

function abortError(signal: AbortSignal, ref: string): AnyServeError {
  const reason = signal.reason as { name?: string } | undefined;
  // The store's fetch deadline (AbortSignal.timeout) says TimeoutError, as remote.ts maps it.
  return reason?.name === "TimeoutError"
    ? new AnyServeError("DEADLINE_EXCEEDED", `reading object ${ref} through the replica did not finish in time`)
    : new AnyServeError("CANCELLED", `reading object ${ref} through the replica was cancelled`);
}
