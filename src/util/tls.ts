/**
 * TLS material for anyserve's servers and the connections they open (docs/security.md#tls).
 *
 * - A server (the API server's REST and gRPC ports, a replica's REST + frame port and gRPC port)
 *   serves TLS when given a certificate chain and its key (PEM files: `--tls-cert`, `--tls-key`).
 * - A client side (the gateway calling replicas, a replica calling the API server or another
 *   replica) trusts the system's CAs plus, when given, a CA bundle (`--tls-ca`): a deployment with
 *   its own CA names it once for every process. Host names are verified: a certificate must name
 *   the host the peer is called at (an IP SAN for an address).
 *
 * @example
 * ```ts
 * const server = readServerTls({ cert: "server.pem", key: "server-key.pem" }); // {cert, key} Buffers
 * const ca = readCa("ca.pem");  // for FrameClient({ca}), undici's connect: {ca: trustedCas(ca)}
 * ```
 */
import { readFileSync } from "node:fs";
import { createSecureContext, rootCertificates } from "node:tls";
import { AnyServeError } from "../errors.js";

/** A certificate chain and its private key (PEM). */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks a certificate and key: a missing file, a file that is not PEM or a key that does not match is CONFIG_INVALID naming the file. */
export function readServerTls(files: { cert: string; key: string }): ServerTls {
  const cert = readPem(files.cert, "tls certificate (--tls-cert)");
  const key = readPem(files.key, "tls key (--tls-key)");
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new AnyServeError(
      "CONFIG_INVALID",
      `tls certificate ${files.cert} and key ${files.key} do not make a TLS identity: ${(err as Error).message}`,
    );
  }
  return { cert, key };
}

/** Reads a CA bundle (PEM). */
export function readCa(file: string): Buffer {
  const ca = readPem(file, "tls CA bundle (--tls-ca)");
  try {
    createSecureContext({ ca });
  } catch (err) {
    throw new AnyServeError("CONFIG_INVALID", `tls CA bundle ${file} is not usable: ${(err as Error).message}`);
  }
  return ca;
}

/** The CAs a client trusts: the system's and `ca` (Node's `ca` option replaces the system's, so both are given); undefined: the system's. */
export function trustedCas(ca: Buffer | string | undefined): string[] | undefined {
  return ca === undefined ? undefined : [...rootCertificates, ca.toString()];
}

function readPem(file: string, what: string): Buffer {
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (err) {
    throw new AnyServeError(
      "CONFIG_INVALID",
      `${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (!text.includes("-----BEGIN ")) throw new AnyServeError("CONFIG_INVALID", `${what}: ${file} is not a PEM file (no -----BEGIN line)`);
  return text;
}
