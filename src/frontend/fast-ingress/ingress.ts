/**
 * The fast ingress: an opt-in HTTP/1.1 front for the API server's public port, on raw sockets and
 * Node's own llhttp parser, for operators who need more than node:http's request/response objects
 * allow (`anyserve api-server --fast-ingress`, `api_server.fast_ingress: true`).
 *
 * It answers the hot inference routes itself (hot-route.ts) and gives everything else to the
 * ordinary node:http server, so nothing loses function:
 * - a connection whose **first** request is not hot becomes node:http's entirely: the bytes read
 *   so far are put back (`socket.unshift`) and the socket is emitted as a `connection` of the
 *   node:http server, which then parses it from its first byte, pipelined requests and upgrades
 *   included, with the client's real address;
 * - a non-hot request **later** on a connection that already served hot ones cannot be handed over
 *   (node:http must see a connection from its start), so it is relayed over loopback to the same
 *   node:http server, which listens on 127.0.0.1 for that (relay.ts).
 *
 * Hardening follows node:http's: strict llhttp (no lenient flags), 16 KiB of headers, a header
 * count limit, headers/request timeouts (408), keep-alive idle timeout, `Expect: 100-continue`
 * (417 for other expectations), HTTP/1.0, Host required on HTTP/1.1, pipelined answers in order,
 * reading paused while the socket is congested or too many answers are pending, a connection cap.
 */
import type { DataPlaneAuth } from "../../util/auth.js";
import { Agent, type Server } from "node:http";
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import type { Logger } from "../../util/log.js";
import type { InferBackend } from "../../protocol/call.js";
import { LINGER_IDLE_MS, LINGER_MAX_MS, serverOptions } from "../../util/http.js";
import { Connection, type Timeouts } from "./connection.js";
import type { IngressContext } from "./context.js";
import type { RelayTarget } from "./relay.js";
import { HeadEnd } from "./response.js";
import type { BodyBudget } from "../../util/body-budget.js";

export { llhttpAvailable } from "./llhttp.js";

export interface FastIngressOptions {
  backend: InferBackend;
  /**
   * The node:http server that serves every non-hot request: it is handed fresh connections, and
   * must listen on loopback for relayed ones (its own port is not the public one).
   */
  httpServer: Server;
  /** Largest inference body (bytes): 413 beyond. */
  maxBodyBytes: number;
  /** Request bodies held at once over all requests, shared with node:http's routes (503 SERVER_OVERLOADED past it). */
  bodyBudget?: BodyBudget | undefined;
  /** Time a call gets when the caller sets none, and the most it may ask for (ms). */
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** Told the code of each request refused before it reached the backend (as the REST front end's). */
  onRejected?: (code: string) => void;
  /** The inference token check and who counts as a replica, as the REST front end's (`CallLimits.auth`). */
  auth?: DataPlaneAuth | undefined;
  logger?: Logger;
  /** Slow clients: time to send a request's headers, and the whole request (ms; 408 after). Default: node:http ingress's. */
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (ms; default 5000, as node:http). */
  keepAliveTimeoutMs?: number;
  /** Header block size limit (bytes; 431 beyond; default 16 KiB) and header lines kept (default node:http's, 1000; the rest are dropped). */
  maxHeaderSize?: number;
  maxHeaders?: number;
  maxConnections?: number;
  /** Requests read ahead of their answers on one connection before reading pauses (default 64). */
  maxPipelined?: number;
  /**
   * A connection whose client takes none of its answers for this long (ms) is closed and its calls
   * cancelled (default 30 s): as the node:http port's write guard (util/write-guard.ts).
   */
  writeTimeoutMs?: number;
  /** Answer bytes a connection may hold unwritten (ready, waiting behind others or in the socket) before reading pauses (default 4 MiB). */
  maxHeldBytes?: number;
}

/** Header lines node:http keeps of a request (its parser's `maxHeaderPairs`, 2000 entries of the flat list). */
const NODE_MAX_HEADERS = 1000;

export class FastIngress {
  readonly #o: FastIngressOptions;
  readonly #server: NetServer;
  readonly #conns = new Set<Connection>();
  /** Connections given to node:http, destroyed if still open when the grace period of close() ends. */
  readonly #handedOver = new Set<Socket>();
  readonly #agent = new Agent({ keepAlive: true, maxFreeSockets: 16 });
  readonly #ctx: IngressContext;
  readonly #timeouts: Timeouts;
  #timer: NodeJS.Timeout | undefined;
  #target: RelayTarget | undefined;

  constructor(o: FastIngressOptions) {
    this.#o = o;
    const node = serverOptions();
    const keepAliveMs = o.keepAliveTimeoutMs ?? node.keepAliveTimeout ?? 5_000;
    this.#timeouts = {
      headersMs: o.headersTimeoutMs ?? node.headersTimeout ?? 10_000,
      requestMs: o.requestTimeoutMs ?? node.requestTimeout ?? 60_000,
      keepAliveMs,
      lingerMs: LINGER_IDLE_MS,
      lingerMaxMs: LINGER_MAX_MS,
      writeMs: o.writeTimeoutMs ?? 30_000,
    };
    this.#ctx = {
      backend: o.backend,
      limits: { defaultTimeoutMs: o.defaultTimeoutMs, maxTimeoutMs: o.maxTimeoutMs, auth: o.auth },
      maxBodyBytes: o.maxBodyBytes,
      bodyBudget: o.bodyBudget,
      maxHeaderSize: o.maxHeaderSize ?? node.maxHeaderSize ?? 16 * 1024,
      maxHeaders: o.maxHeaders ?? NODE_MAX_HEADERS,
      maxPipelined: o.maxPipelined ?? 64,
      maxHeldBytes: o.maxHeldBytes ?? 4 * 1024 * 1024,
      end: new HeadEnd(keepAliveMs),
      onRejected: o.onRejected,
      logger: o.logger,
      relayTarget: () => this.#relayTarget(),
      handOver: (socket, bytes) => this.#handOver(socket, bytes),
      forget: (conn) => this.#conns.delete(conn),
    };
    // allowHalfOpen as node:http has it: a client may end its side and still wait for its answers.
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.#accept(socket));
    this.#server.maxConnections = o.maxConnections ?? 10_000;
  }

  /** Listens on the public port; resolves with the port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        const t = this.#timeouts;
        const every = Math.max(
          10,
          Math.min(1_000, Math.floor(Math.min(t.headersMs, t.requestMs, t.keepAliveMs, t.lingerMs, t.writeMs) / 4)),
        );
        this.#timer = setInterval(() => this.#sweep(), every);
        this.#timer.unref();
        resolve((this.#server.address() as AddressInfo).port);
      });
    });
  }

  /** Open connections served by the fast ingress itself (not counting those handed to node:http). */
  get connections(): number {
    return this.#conns.size;
  }

  /**
   * Stops accepting; idle connections close at once, busy ones after their answers, all of them
   * (and those handed to node:http) after `graceMs`.
   */
  async close(graceMs = 5_000): Promise<void> {
    clearInterval(this.#timer);
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const c of [...this.#conns]) c.shutdown();
    const force = setTimeout(() => {
      for (const c of this.#conns) c.socket.destroy();
      for (const s of this.#handedOver) s.destroy();
    }, graceMs);
    force.unref();
    await closed;
    clearTimeout(force);
    this.#agent.destroy();
  }

  #accept(socket: Socket): void {
    const handle = (socket as unknown as { _handle?: { isStreamBase?: boolean } | null })._handle;
    // llhttp reads from the libuv stream itself; a socket without one (never for TCP) goes to node:http whole.
    if (handle?.isStreamBase !== true) {
      this.#handOver(socket, undefined);
      return;
    }
    this.#conns.add(new Connection(socket, this.#ctx));
  }

  /** Puts back what was read and lets node:http take the connection from its first byte. */
  #handOver(socket: Socket, bytes: Buffer | undefined): void {
    if (bytes !== undefined && bytes.length > 0) socket.unshift(bytes);
    this.#handedOver.add(socket);
    socket.once("close", () => this.#handedOver.delete(socket));
    this.#o.httpServer.emit("connection", socket);
  }

  #relayTarget(): RelayTarget | undefined {
    if (this.#target !== undefined) return this.#target;
    const address = this.#o.httpServer.address();
    if (address === null || typeof address === "string") return undefined;
    this.#target = { host: address.address, port: address.port, agent: this.#agent };
    return this.#target;
  }

  #sweep(): void {
    const now = Date.now();
    for (const c of this.#conns) c.tick(now, this.#timeouts);
  }
}
