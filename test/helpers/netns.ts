/**
 * Hosts for tests: Linux network namespaces joined by veth pairs to a bridge, each with its own
 * address in a private 10.x subnet the test picks (one not already on this machine) and removes
 * at the end. The bridge lives in the test's own namespace and carries the subnet's first
 * address, so the test process itself is a client on the same LAN; no route, forwarding or NAT
 * is added, so nothing leaves the subnet.
 *
 * Needs root (CAP_NET_ADMIN) and `ip` (iproute2): {@link netnsUnavailable} says why not, for a
 * skip with a reason.
 */
import { execFileSync } from "node:child_process";

export interface Lan {
  /** The bridge's address (the test process's own on the LAN). */
  readonly gateway: string;
  /** Host name → { namespace, address, interface inside it }. */
  readonly hosts: Record<string, { ns: string; address: string; dev: string }>;
  /** Takes a host's link down or up (`ip link set eth0 down|up` inside its namespace). */
  link(host: string, state: "up" | "down"): void;
  /** Deletes the namespaces (their veth pairs go with them) and the bridge. */
  remove(): void;
}

const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== "linux") return `network namespaces are Linux only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "creating network namespaces needs root";
  try {
    ip("-V");
  } catch {
    return "`ip` (iproute2) is not installed";
  }
  const probe = `asprobe${process.pid}`;
  try {
    ip("netns", "add", probe);
    ip("netns", "del", probe);
  } catch (err) {
    return `this machine gives no right to create network namespaces: ${(err as Error).message.split("\n")[0]}`;
  }
  return undefined;
}

/** A 10.x.y.0/24 no interface here uses yet. */
function freeSubnet(): string {
  const used = ip("-4", "-o", "addr");
  for (let i = 0; i < 200; i++) {
    const subnet = `10.${200 + Math.floor(Math.random() * 50)}.${1 + Math.floor(Math.random() * 250)}`;
    if (!used.includes(` ${subnet}.`)) return subnet;
  }
  throw new Error("no free 10.x subnet found for the test LAN");
}

/** Makes one namespace per name, each on the LAN at 10.x.y.(10+i). */
export function makeLan(names: readonly string[]): Lan {
  const tag = `as${process.pid.toString(36)}`;
  const bridge = `${tag}br`;
  const subnet = freeSubnet();
  const hosts: Lan["hosts"] = {};
  const remove = (): void => {
    for (const h of Object.values(hosts)) {
      try {
        ip("netns", "del", h.ns);
      } catch {}
    }
    try {
      ip("link", "del", bridge);
    } catch {}
  };
  try {
    ip("link", "add", bridge, "type", "bridge");
    ip("addr", "add", `${subnet}.1/24`, "dev", bridge);
    ip("link", "set", bridge, "up");
    names.forEach((name, i) => {
      const ns = `${tag}-${name}`;
      const outer = `${tag}v${i}`;
      ip("netns", "add", ns);
      hosts[name] = { ns, address: `${subnet}.${10 + i}`, dev: "eth0" };
      ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns);
      ip("link", "set", outer, "master", bridge, "up");
      ip("-n", ns, "addr", "add", `${subnet}.${10 + i}/24`, "dev", "eth0");
      ip("-n", ns, "link", "set", "eth0", "up");
      ip("-n", ns, "link", "set", "lo", "up");
    });
  } catch (err) {
    remove();
    throw err;
  }
  return {
    gateway: `${subnet}.1`,
    hosts,
    link(host, state) {
      const h = hosts[host];
      if (!h) throw new Error(`no host ${host}`);
      ip("-n", h.ns, "link", "set", h.dev, state);
    },
    remove,
  };
}
