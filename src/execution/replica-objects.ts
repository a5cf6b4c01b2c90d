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
import { ReplicaRequests } from "./replica-requests.js";
import { Msg, type Meta } from "./worker-protocol.js";

const NO_BODY = Buffer.alloc(0);

export class ReplicaObjects implements RemoteObjects {
  readonly #requests: ReplicaRequests;

  /** `send`: one message to the replica, now. */
  constructor(send: (type: number, id: number, meta: Meta, body: Buffer) => void) {
    this.#requests = new ReplicaRequests(send);
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
    this.#requests.answer(id, meta, body);
  }

  #fetch(ref: string, op: "stat" | "get", signal: AbortSignal): Promise<{ meta: Meta; body: Buffer }> {
    return this.#requests.ask(Msg.FETCH, { ref, op }, NO_BODY, signal, () => abortError(signal, ref));
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
