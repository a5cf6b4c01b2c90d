/** Shared fixtures of the transport tests: a real http.Server with a frame server on port 0. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  attachFrameServer,
  type FrameHandler,
  type FrameServerControl,
  type FrameServerOptions,
} from "../../src/transport/frame-server.js";

export interface Replica {
  url: string;
  server: http.Server;
  frames: FrameServerControl;
  /** Re-attaches a frame server (after `frames.close()`), e.g. to test reconnects. */
  reattach(handler?: FrameHandler): void;
  close(): Promise<void>;
}

export async function startReplica(handler: FrameHandler, opts?: FrameServerOptions): Promise<Replica> {
  const server = http.createServer((_req, res) => {
    res.end("plain http");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const r: Replica = {
    url: `http://127.0.0.1:${port}`,
    server,
    frames: attachFrameServer(server, handler, opts),
    reattach(h = handler) {
      r.frames = attachFrameServer(server, h, opts);
    },
    async close() {
      r.frames.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return r;
}

/** A promise with its resolve function outside, to wait on events without sleeping. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A port nobody listens on: listen on port 0, then close. */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Echo handler: answers `{ id, ...meta }` and the request body. */
export const echo: FrameHandler = (req, res) => res.reply({ id: req.id, ...req.meta }, req.body);
