/**
 * The forwarder's connections: one transport per registered replica, made on first use and reused
 * by every request after. A replica that leaves, or registers again with another endpoint or
 * secret (another process), gets no new request on its old connection; the old one is retired —
 * closed once its in-flight requests are answered.
 */
import { AnyServeError } from "../errors.js";
import { retireClient } from "../transport/retire.js";
import { targetOf, type ReplicaEntry } from "../routing/registry.js";
import { FramesTransport, type ReplicaTransport } from "./transports/transport.js";
import { OipGrpcTransport } from "./transports/oip-grpc.js";
import { OipRestTransport } from "./transports/oip-rest.js";

export class ReplicaClients {
  readonly #clients = new Map<string, ReplicaTransport>();
  /** Clients of replicas that left, kept until their in-flight requests are answered. */
  readonly #retired = new Set<ReplicaTransport>();
  /** CA bundle trusted for replicas that serve TLS (`https://` endpoints), besides the system's. */
  readonly #tlsCa: Buffer | undefined;

  constructor(tlsCa: Buffer | undefined) {
    this.#tlsCa = tlsCa;
  }

  /** The replica's transport, made on first use: frames for anyserve, OIP gRPC or REST for a foreign server. */
  get(entry: ReplicaEntry): ReplicaTransport {
    let client = this.#clients.get(entry.replicaId);
    if (!client) {
      if (entry.protocol === "oip-grpc") client = new OipGrpcTransport(entry);
      else if (!entry.httpEndpoint)
        throw new AnyServeError("REPLICA_UNREACHABLE", `replica '${entry.replicaId}' registered no http_endpoint to forward to`);
      else if (entry.protocol === "oip-rest") client = new OipRestTransport(entry);
      // The replica's own secret, never the control-plane token: an endpoint gets only what it registered with.
      else client = new FramesTransport(entry.httpEndpoint, entry.secret, this.#tlsCa);
      this.#clients.set(entry.replicaId, client);
    }
    return client;
  }

  /**
   * A registry change (its `onChange` listener). A replica that left (or re-registered elsewhere)
   * gets no new requests on its old connection; the ones in flight finish (a draining replica
   * unregisters before it drains).
   */
  track(event: "register" | "unregister", entry: ReplicaEntry): void {
    const client = this.#clients.get(entry.replicaId);
    // A new endpoint or a new secret is a new process (or another one) under this id.
    const moved = client !== undefined && (client.target !== targetOf(entry) || client.credential !== entry.secret);
    if (client && (event === "unregister" || moved)) {
      this.#clients.delete(entry.replicaId);
      retireClient(client, this.#retired);
    }
  }

  /** Called when an attempt on `client` is answered: a retired client closes after its last answer. */
  answered(client: ReplicaTransport): void {
    if (client.inFlight === 0 && this.#retired.delete(client)) void client.close();
  }

  /** Closes every client, current and retired (the API server's shutdown). */
  async close(): Promise<void> {
    const clients = [...this.#clients.values(), ...this.#retired];
    this.#clients.clear();
    this.#retired.clear();
    await Promise.all(clients.map((c) => c.close()));
  }
}
