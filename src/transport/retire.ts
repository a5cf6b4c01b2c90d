/**
 * Retiring a replica's FrameClient when the replica leaves (the gateway's forwarder, the SDK's
 * direct path): it takes no new requests, and closes once its last request is answered.
 */
/** A client of one replica (a FrameClient, or the gateway's transport of any kind). */
export interface Retirable {
  readonly inFlight: number;
  close(): Promise<void>;
}

/** The longest a retired client is kept for its in-flight requests. */
const RETIRE_MAX_MS = 10 * 60_000;

/**
 * Closes `client` now when idle; otherwise keeps it in `retired` — whose owner closes it after
 * its last answer (`client.inFlight === 0 && retired.delete(client)`) — for at most 10 minutes.
 */
export function retireClient<C extends Retirable>(client: C, retired: Set<C>): void {
  if (client.inFlight === 0) {
    void client.close();
    return;
  }
  retired.add(client);
  setTimeout(() => {
    if (retired.delete(client)) void client.close();
  }, RETIRE_MAX_MS).unref();
}
