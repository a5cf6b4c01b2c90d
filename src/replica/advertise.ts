/**
 * Where a replica says it can be reached, as opposed to where it listens. A replica bound to all
 * interfaces (`--host 0.0.0.0` or `::`) cannot register `0.0.0.0`: the API server would call
 * itself. It registers its advertised host instead — `--advertise-host` when given, else the
 * address of the interface this machine would use to reach the API server (what the API server
 * sees as the replica's source address, so it routes back), found by "connecting" a UDP socket to
 * the API server: the kernel picks the route and source address and no packet is sent.
 *
 * @example
 * ```ts
 * await advertisedHost({ host: "0.0.0.0", apiServer: "http://10.0.0.1:8080" }); // "10.0.0.5" (this host's address on that route)
 * await advertisedHost({ host: "0.0.0.0", advertiseHost: "node-a.internal" });   // "node-a.internal"
 * await advertisedHost({ host: "127.0.0.1" });                                   // "127.0.0.1": a specific bind address is advertised as is
 * ```
 */
import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";

/** True for the addresses that mean "every interface". */
export function isWildcardHost(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]" || host === "";
}

/**
 * The host a replica registers and puts in its object refs: `advertiseHost` when set; the bind
 * host when it is a specific address; else the source address of the route to the first API
 * server; else (no API server) the first non-internal interface address, else loopback.
 */
export async function advertisedHost(o: {
  host: string;
  advertiseHost?: string | null | undefined;
  apiServer?: string | undefined;
}): Promise<string> {
  if (o.advertiseHost) return o.advertiseHost;
  if (!isWildcardHost(o.host)) return o.host;
  if (o.apiServer) {
    const url = new URL(o.apiServer);
    const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
    return sourceAddressTowards(url.hostname.replace(/^\[|\]$/g, ""), port);
  }
  return firstInterfaceAddress() ?? "127.0.0.1";
}

/** The local address the kernel would send from to reach `host:port` (UDP connect: no packet leaves). */
export async function sourceAddressTowards(host: string, port: number): Promise<string> {
  const address = isIP(host) ? host : (await lookup(host)).address;
  const socket = createSocket(isIP(address) === 6 ? "udp6" : "udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(port, address, () => resolve());
    });
    return socket.address().address;
  } finally {
    socket.close();
  }
}

function firstInterfaceAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === "IPv4") return a.address;
  }
  return undefined;
}
