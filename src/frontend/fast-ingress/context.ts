/** What the fast ingress's connections share (built once by ingress.ts, read by connection.ts). */
import type { Socket } from "node:net";
import type { BodyBudget } from "../../util/body-budget.js";
import type { Logger } from "../../util/log.js";
import type { InferBackend } from "../../protocol/call.js";
import type { CallLimits } from "../call-head.js";
import type { Connection } from "./connection.js";
import type { RelayTarget } from "./relay.js";
import type { HeadEnd } from "./response.js";

/** What every connection shares: the backend, the limits, and the way to node:http. */
export interface IngressContext {
  backend: InferBackend;
  limits: CallLimits;
  maxBodyBytes: number;
  /** Request bodies held at once over all requests (the API server's budget), if any. */
  bodyBudget: BodyBudget | undefined;
  maxHeaderSize: number;
  /** Header lines kept of a request (node:http's count); more are dropped. */
  maxHeaders: number;
  /** Requests parsed ahead of their answers; past this the socket is not read until answers go out. */
  maxPipelined: number;
  /** Answer bytes held unwritten on one connection past which the socket is not read until they go out. */
  maxHeldBytes: number;
  end: HeadEnd;
  onRejected: ((code: string) => void) | undefined;
  logger: Logger | undefined;
  /** Where relayed requests go; undefined when node:http is not listening. */
  relayTarget(): RelayTarget | undefined;
  /** Makes a fresh connection node:http's, with the bytes read from it so far. */
  handOver(socket: Socket, bytes: Buffer): void;
  /** The connection is closed or handed over. */
  forget(conn: Connection): void;
}
