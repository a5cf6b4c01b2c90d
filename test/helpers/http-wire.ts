/**
 * A raw HTTP/1.1 client connection for conformance tests: writes exact bytes and reads every
 * answer that comes back, in order — interim 1xx answers, Content-Length, chunked and
 * close-delimited bodies — so pipelining, `Expect: 100-continue` and closes can be checked.
 */
import { subscribe } from "node:diagnostics_channel";
import { connect, type Socket } from "node:net";
import { waitFor } from "./processes.js";

/**
 * The server's end of every TCP connection accepted in this process, by the client's port (Node's
 * documented `net.server.socket` diagnostics channel): its `bytesRead` tells a test what the
 * server has read, whoever reads it (llhttp in consume mode emits no 'data' events).
 */
const accepted = new Map<number, Socket>();
subscribe("net.server.socket", (message) => {
  const { socket } = message as { socket: Socket };
  const port = socket.remotePort;
  if (port === undefined) return;
  accepted.set(port, socket);
  socket.once("close", () => {
    if (accepted.get(port) === socket) accepted.delete(port);
  });
});

export interface WireAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export class Wire {
  readonly socket: Socket;
  readonly answers: WireAnswer[] = [];
  /** Resolves when the server closed (or the socket failed). */
  readonly closed: Promise<void>;
  #data: Buffer = Buffer.alloc(0);
  #ended = false;
  #waiters: (() => void)[] = [];
  /** Bytes written so far. */
  #sent = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#data = Buffer.concat([this.#data, chunk]);
      this.#parse();
    });
    socket.on("error", () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.#ended = true;
        this.#parse();
        resolve();
      }),
    );
  }

  static open(port: number): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => resolve(new Wire(socket)));
      socket.once("error", reject);
    });
  }

  get isClosed(): boolean {
    return this.#ended;
  }

  write(bytes: string | Buffer): void {
    this.#sent += Buffer.byteLength(bytes);
    this.socket.write(bytes);
  }

  /**
   * Writes `bytes`, then waits until the server — which must run in this process — has read every
   * byte written so far. What is written next then reaches the server in a read of its own, so a
   * test can split a request at exact places (or know a request arrived) without sleeping.
   */
  async writeApart(bytes: string | Buffer, timeoutMs = 5_000): Promise<void> {
    this.socket.setNoDelay(true);
    this.write(bytes);
    const port = this.socket.localPort;
    await waitFor("the server to read what was written", () => (accepted.get(port ?? -1)?.bytesRead ?? -1) >= this.#sent, timeoutMs, 1);
  }

  /** The server's end of this connection, when the server runs in this process. */
  serverEnd(): Socket | undefined {
    return accepted.get(this.socket.localPort ?? -1);
  }

  /** Writes `text` one byte per `gapMs`, stopping when the server closes. */
  async trickle(text: string, gapMs: number): Promise<void> {
    for (const ch of text) {
      if (this.#ended || this.socket.destroyed) return;
      this.write(ch);
      await new Promise((r) => setTimeout(r, gapMs));
    }
  }

  /** Waits until `count` answers (interim ones included) have come, or fails after `timeoutMs`. */
  async next(count = 1, timeoutMs = 5_000): Promise<WireAnswer[]> {
    const end = Date.now() + timeoutMs;
    while (this.answers.length < count) {
      if (this.#ended)
        throw new Error(
          `closed after ${this.answers.length} of ${count} answers; left: ${JSON.stringify(this.#data.toString("latin1").slice(0, 200))}`,
        );
      const left = end - Date.now();
      if (left <= 0)
        throw new Error(
          `${this.answers.length} of ${count} answers within ${timeoutMs} ms; left: ${JSON.stringify(this.#data.toString("latin1").slice(0, 200))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.answers.slice(0, count);
  }

  /** Resolves true when the server closes within `timeoutMs`. */
  async closesWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const result = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }

  #parse(): void {
    for (;;) {
      const a = this.#one();
      if (a === undefined) break;
      this.answers.push(a);
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Takes one complete answer off the front of the buffer. */
  #one(): WireAnswer | undefined {
    const r = takeReply(this.#data, "POST", this.#ended);
    if (r === undefined) return undefined;
    this.#data = r.rest;
    return { status: r.reply.status, headers: r.reply.headers, body: r.reply.body.toString("utf8") };
  }
}

/** One answer as read off the wire. */
export interface WireReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Takes one answer off the front of `data`; undefined while it is incomplete. */
export function takeReply(data: Buffer, method: string, ended: boolean): { reply: WireReply; rest: Buffer } | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine ?? "");
  const status = m ? Number(m[1]) : -1;
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i <= 0) {
      headers["!malformed"] = l;
      continue;
    }
    const name = l.slice(0, i).trim().toLowerCase();
    headers[name] = headers[name] === undefined ? l.slice(i + 1).trim() : `${headers[name]}, ${l.slice(i + 1).trim()}`;
  }
  let rest = data.subarray(end + 4);
  let body: Buffer;
  if (status < 200 || status === 204 || status === 304 || method === "HEAD") body = Buffer.alloc(0);
  else if (headers["content-length"] !== undefined) {
    const n = Number(headers["content-length"]);
    if (rest.length < n) return undefined;
    body = rest.subarray(0, n);
    rest = rest.subarray(n);
  } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    const parts: Buffer[] = [];
    for (;;) {
      const line = rest.indexOf("\r\n");
      if (line < 0) return undefined;
      const size = Number.parseInt(rest.subarray(0, line).toString("latin1"), 16);
      if (!Number.isFinite(size)) return undefined;
      if (rest.length < line + 2 + size + 2) return undefined;
      if (size === 0) {
        rest = rest.subarray(line + 4);
        break;
      }
      parts.push(rest.subarray(line + 2, line + 2 + size));
      rest = rest.subarray(line + 2 + size + 2);
    }
    body = Buffer.concat(parts);
  } else {
    if (!ended) return undefined; // close-delimited
    body = rest;
    rest = Buffer.alloc(0);
  }
  return { reply: { status, headers, body }, rest };
}

/** A request's bytes: request line, Host, the given header lines, Content-Length when there is a body. */
export function req(method: string, path: string, headers: string[] = [], body?: string): string {
  const length = body === undefined ? [] : [`Content-Length: ${Buffer.byteLength(body)}`];
  return `${method} ${path} HTTP/1.1\r\nHost: t\r\n${[...headers, ...length].map((h) => `${h}\r\n`).join("")}\r\n${body ?? ""}`;
}
