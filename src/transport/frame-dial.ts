/**
 * Opening one socket of the framed hop: an HTTP(S) `GET /frames` with `Upgrade`, the replica's
 * secret as a bearer token, a guarded name lookup, a connect-and-upgrade timeout. What the socket
 * carries afterwards (requests multiplexed by id) is the FrameClient's (frame-client.ts); this file
 * only says whether a socket came, or why not.
 */
import http, { type ClientRequest, type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { guardedLookup, refusedHost } from "../util/address.js";
import { trustedCas } from "../util/tls.js";
import { FRAMES_PATH, FRAMES_PROTOCOL } from "./frame-server.js";

/** Where and how a FrameClient dials its replica; made once per client ({@link dialTarget}). */
export interface DialTarget {
  readonly url: URL;
  /** Shown as `Authorization: Bearer <credential>` on the upgrade. */
  readonly credential: string | undefined;
  /** CAs trusted for an `https://` replica (its certificate must name the host). */
  readonly ca: string[] | undefined;
  /** Why this replica's address may not be called (a link-local or metadata address), if it may not. */
  readonly refused: string | undefined;
  readonly connectTimeoutMs: number;
}

export function dialTarget(
  url: string,
  credential: string | undefined,
  ca: Buffer | string | undefined,
  connectTimeoutMs: number,
): DialTarget {
  const u = new URL(url);
  return { url: u, credential, ca: trustedCas(ca), refused: refusedHost(u.hostname), connectTimeoutMs };
}

/** How a dial ends: a socket speaking frames (with bytes already read past the 101), or why not. */
export interface DialEvents {
  upgraded(socket: Socket, head: Buffer): void;
  /** Called at most once before `upgraded`; may be called again after it (a late close): the client ignores those. */
  failed(why: string, code?: "REPLICA_UNREACHABLE" | "SHUTTING_DOWN", status?: number): void;
}

/**
 * Dials `t`; returns the upgrade request (destroyed to abandon the dial), or undefined when there is
 * none (the address is refused, or the request could not be made: `failed` is called on the next tick).
 */
export function dialFrames(t: DialTarget, on: DialEvents): ClientRequest | undefined {
  const headers: Record<string, string> = { Connection: "Upgrade", Upgrade: FRAMES_PROTOCOL };
  if (t.credential !== undefined) headers.Authorization = `Bearer ${t.credential}`;
  if (t.refused !== undefined) {
    process.nextTick(() => on.failed(`not called: ${t.refused}`));
    return undefined;
  }
  let req: ClientRequest;
  try {
    const secure = t.url.protocol === "https:";
    req = (secure ? https : http).request({
      host: t.url.hostname.replace(/^\[|\]$/g, ""),
      port: t.url.port || (secure ? 443 : 80),
      method: "GET",
      path: FRAMES_PATH,
      headers,
      agent: false,
      // A name is resolved here, and its addresses checked as a registered address is.
      lookup: guardedLookup,
      ...(secure && t.ca !== undefined ? { ca: t.ca } : {}),
    });
  } catch (err) {
    process.nextTick(() => on.failed(`cannot connect: ${(err as Error).message}`));
    return undefined;
  }
  const timer = setTimeout(() => {
    on.failed(`no connection within ${t.connectTimeoutMs} ms`);
    req.destroy();
  }, t.connectTimeoutMs);
  req.on("error", (err) => {
    clearTimeout(timer);
    on.failed(err.message);
  });
  req.on("close", () => {
    clearTimeout(timer);
    on.failed("the connection closed during the upgrade");
  });
  req.on("response", (res: IncomingMessage) => {
    clearTimeout(timer);
    res.resume();
    const code = res.statusCode === 503 ? "SHUTTING_DOWN" : "REPLICA_UNREACHABLE";
    on.failed(`refused the frame connection with HTTP ${res.statusCode}`, code, res.statusCode);
    req.destroy();
  });
  req.on("upgrade", (res: IncomingMessage, socket: Socket, head: Buffer) => {
    clearTimeout(timer);
    if ((res.headers.upgrade ?? "").toLowerCase() !== FRAMES_PROTOCOL) {
      socket.destroy();
      on.failed("answered the upgrade with another protocol");
      return;
    }
    on.upgraded(socket, head);
  });
  req.end();
  return req;
}
