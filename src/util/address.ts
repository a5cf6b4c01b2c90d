/**
 * Which hosts the gateway may call. A replica tells the API server where it listens
 * (`http_endpoint`, `endpoint`), and the API server then connects there — so a registration must
 * not be able to point it at the cloud's metadata service (which hands out credentials to
 * whoever asks from the machine) or at any other link-local address.
 *
 * Every spelling of an address is reduced to its bytes before it is checked: IPv4 in decimal,
 * octal or hex (`2852039166`, `0251.0376.0251.0376`, `0xa9fea9fe` — the WHATWG URL parser turns
 * them into dotted quads, and {@link hostOfEndpoint} puts `host:port` endpoints through the same
 * parser), and IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, compatible
 * `::a.b.c.d`, translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4
 * `2002::/16`, Teredo `2001::/32`): the IPv4 inside is checked as IPv4. A name is checked when the
 * connection is made ({@link guardedLookup}: every address it resolves to), which also covers a
 * name that resolves differently later (DNS rebinding).
 *
 * @example
 * ```ts
 * refusedHost("[::ffff:a9fe:a9fe]"); // "169.254.169.254 (inside ::ffff:a9fe:a9fe) is link-local …"
 * refusedHost("127.0.0.1");          // undefined: allowed
 * ```
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { isIPv4, isIPv6, type LookupFunction } from "node:net";

/** IPv4 ranges never called, with why. */
const REFUSED_V4: [base: string, bits: number, why: string][] = [
  ["169.254.0.0", 16, "link-local (the cloud metadata service lives at 169.254.169.254)"],
  ["100.100.100.200", 32, "a cloud metadata service (Alibaba Cloud)"],
  ["168.63.129.16", 32, "a cloud host service (Azure WireServer)"],
];

/** IPv6 ranges never called, with why (IPv4 carried inside an IPv6 address is checked as IPv4). */
const REFUSED_V6: [base: string, bits: number, why: string][] = [
  ["fe80::", 10, "link-local"],
  ["fd00:ec2::254", 128, "a cloud metadata service (AWS, IPv6)"],
];

/** Names of metadata services, refused at registration (a connection checks what any name resolves to). */
const REFUSED_NAMES = new Set(["metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"]);

const v4Ranges = REFUSED_V4.map(([base, bits, why]) => ({ base: v4Bytes(base)!, bits, why }));
const v6Ranges = REFUSED_V6.map(([base, bits, why]) => ({ base: v6Bytes(base)!, bits, why }));

/**
 * Why the gateway must not call `hostname` — a name, an IPv4 address or an IPv6 address with or
 * without brackets, as `URL.hostname` gives it — or undefined when it may.
 */
export function refusedHost(hostname: string): string | undefined {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (isIPv4(host)) return refusedV4(v4Bytes(host)!, host);
  if (isIPv6(host)) return refusedV6(host);
  const name = host.replace(/\.$/, "");
  if (REFUSED_NAMES.has(name)) return `${name} is a cloud metadata service`;
  return undefined;
}

/**
 * The host of a `host:port` endpoint as the URL parser normalises it (`0xa9fea9fe:80` →
 * `169.254.169.254`), so it is checked and stored in one spelling; undefined when it is no host.
 */
export function hostOfEndpoint(endpoint: string): string | undefined {
  try {
    return new URL(`http://${endpoint}`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * A `dns.lookup` for sockets the gateway opens to replicas: resolves as usual, then fails with
 * `EACCES` when any address it found is refused by {@link refusedHost}. Node calls it only for
 * names; IP literals are checked at registration.
 */
export const guardedLookup = ((hostname: string, options: LookupOptions, callback: LookupCallback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, "", 0);
    for (const a of addresses) {
      const why = refusedHost(a.address);
      if (why !== undefined) {
        const refused = Object.assign(new Error(`${hostname} resolves to ${a.address}, which anyserve does not call: ${why}`), {
          code: "EACCES",
        });
        return callback(refused, "", 0);
      }
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "", 0);
    callback(null, first.address, first.family);
  });
}) as LookupFunction;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

function refusedV4(bytes: number[], shown: string): string | undefined {
  for (const r of v4Ranges) if (inRange(bytes, r.base, r.bits)) return `${shown} is ${r.why}`;
  return undefined;
}

function refusedV6(host: string): string | undefined {
  const bytes = v6Bytes(host);
  if (bytes === undefined) return `${host} is not an IPv6 address anyserve can read`;
  for (const r of v6Ranges) if (inRange(bytes, r.base, r.bits)) return `${host} is ${r.why}`;
  for (const v4 of embeddedV4(bytes)) {
    const why = refusedV4(v4, v4.join("."));
    if (why !== undefined) return `${why} (inside ${host})`;
  }
  return undefined;
}

/** The IPv4 addresses an IPv6 address carries (mapped, compatible, translated, NAT64, 6to4, Teredo). */
function embeddedV4(b: number[]): number[][] {
  const zero = (from: number, to: number): boolean => b.slice(from, to).every((x) => x === 0);
  const last = b.slice(12, 16);
  const found: number[][] = [];
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) found.push(last); // ::ffff:a.b.c.d
  if (zero(0, 12) && !zero(12, 15)) found.push(last); // ::a.b.c.d (not :: or ::1)
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && zero(10, 12)) found.push(last); // ::ffff:0:a.b.c.d
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) found.push(last); // 64:ff9b::/96, 64:ff9b:1::/48
  if (b[0] === 0x20 && b[1] === 0x02) found.push(b.slice(2, 6)); // 2002:aabb:ccdd::/16
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x00 && b[3] === 0x00) {
    found.push(
      b.slice(4, 8),
      last.map((x) => x ^ 0xff),
    ); // Teredo: server, and the client obfuscated
  }
  return found;
}

function inRange(bytes: number[], base: number[], bits: number): boolean {
  for (let i = 0; i < base.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== (base[i]! & mask)) return false;
  }
  return true;
}

function v4Bytes(text: string): number[] | undefined {
  const parts = text.split(".").map(Number);
  return parts.length === 4 && parts.every((n) => Number.isInteger(n) && n >= 0 && n <= 255) ? parts : undefined;
}

/** An IPv6 address as 16 bytes (with `::` and a dotted IPv4 tail); undefined when it is not one. */
function v6Bytes(text: string): number[] | undefined {
  let s = text.replace(/%.*$/, ""); // a zone id (fe80::1%eth0) names an interface, not an address
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const v4 = v4Bytes(dotted[1]!);
    if (!v4) return undefined;
    tail.push(...v4);
    s = s.slice(0, -dotted[1]!.length);
    if (s.endsWith(":") && !s.endsWith("::")) s = s.slice(0, -1);
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string | undefined): number[] | undefined => {
    if (h === undefined || h === "") return [];
    const out: number[] = [];
    for (const g of h.split(":")) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
      const n = Number.parseInt(g, 16);
      out.push(n >> 8, n & 0xff);
    }
    return out;
  };
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if (head === undefined || rest === undefined) return undefined;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 1 ? known !== 16 : known > 14) return undefined;
  return [...head, ...new Array<number>(16 - known).fill(0), ...rest, ...tail];
}
