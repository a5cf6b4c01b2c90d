/**
 * The way to node:http for a request that is not hot but arrives on a connection the fast ingress
 * has already served (say `GET /registry` after some `/infer` calls on one keep-alive connection).
 * node:http can only be handed a connection at its start — its parser must see every byte from
 * there — so such a request is forwarded over loopback to the same node:http server (which listens
 * on 127.0.0.1 for this), and the answer is relayed into the request's slot as it streams (SSE
 * included), framed for the client: Content-Length kept, chunked otherwise (close-delimited for
 * HTTP/1.0). Rare by design: clients that mix routes mostly open a connection per purpose.
 */
import { request, type Agent, type ClientRequest, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { AnyServeError } from "../../errors.js";
import type { Outbox, Slot } from "./outbox.js";
import { errorHead, head, type HeadEnd } from "./response.js";

/** Hop-by-hop headers: they describe one connection, so they are not forwarded either way. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect", "transfer-encoding"]);
/** Left out of relayed answers: hop-by-hop ones, and Date, which the head adds itself. */
const NOT_RELAYED = new Set([...HOP_BY_HOP, "date"]);

/** A relayed answer that is not at the front yet is buffered up to this, then its source waits. */
const BUFFER_LIMIT = 256 * 1024;

export interface RelayTarget {
  host: string;
  port: number;
  agent: Agent;
}

/** The request being relayed, as the connection's parser saw it. */
export interface RelayRequest {
  method: string;
  url: string;
  /** llhttp's flat `[name, value, …]` list. */
  rawHeaders: readonly string[];
  /** HTTP/1.0 client: no chunked answers. */
  http10: boolean;
  keepAlive: boolean;
}

export class Relay {
  readonly #slot: Slot;
  readonly #outbox: Outbox;
  readonly #socket: Socket;
  readonly #end: HeadEnd;
  readonly #http10: boolean;
  readonly #head: boolean;
  #keepAlive: boolean;
  readonly #req: ClientRequest;
  #res: IncomingMessage | undefined;
  #chunked = false;
  #done = false;
  /** Told when the answer is complete (or failed): the connection forgets the relay. */
  onDone: ((relay: Relay) => void) | undefined;
  /** Told when the loopback request can take more body after `write` said no. */
  onBodyDrain: (() => void) | undefined;

  constructor(target: RelayTarget, r: RelayRequest, slot: Slot, outbox: Outbox, socket: Socket, end: HeadEnd) {
    this.#slot = slot;
    this.#outbox = outbox;
    this.#socket = socket;
    this.#end = end;
    this.#http10 = r.http10;
    this.#head = r.method === "HEAD";
    this.#keepAlive = r.keepAlive;
    const headers: string[] = [];
    let host = false;
    let chunked = false;
    for (let i = 0; i + 1 < r.rawHeaders.length; i += 2) {
      const name = r.rawHeaders[i]!.toLowerCase();
      if (name === "host") host = true;
      if (name === "transfer-encoding") chunked = true;
      if (!HOP_BY_HOP.has(name)) headers.push(r.rawHeaders[i]!, r.rawHeaders[i + 1]!);
    }
    // The body arrives de-chunked from llhttp; the loopback request re-chunks it.
    if (chunked) headers.push("Transfer-Encoding", "chunked");
    this.#req = request({
      host: target.host,
      port: target.port,
      agent: target.agent,
      method: r.method,
      path: r.url,
      headers,
      setHost: !host,
    });
    this.#req.on("response", (res) => this.#onResponse(res));
    this.#req.on("error", (err) => this.#fail(err));
    this.#req.on("drain", () => this.onBodyDrain?.());
  }

  /** The answer has begun (its head is queued or out): a failure now can only close the connection. */
  get answered(): boolean {
    return this.#res !== undefined;
  }

  /** A piece of the request body; false when the caller should stop reading until `onBodyDrain`. */
  write(chunk: Buffer): boolean {
    return this.#done ? true : this.#req.write(chunk);
  }

  /** The request body is complete. */
  end(): void {
    if (!this.#done) this.#req.end();
  }

  /** The client went away: the loopback request is dropped (node:http then sees its client leave). */
  abort(): void {
    this.#done = true;
    this.#req.destroy();
  }

  #onResponse(res: IncomingMessage): void {
    if (this.#done) {
      res.destroy();
      return;
    }
    this.#res = res;
    const status = res.statusCode ?? 502;
    const noBody = this.#head || status === 204 || status === 304 || status < 200;
    const length = res.headers["content-length"] !== undefined;
    // node:http closes after answers like 413 (it did not read the whole body): so does the client's connection.
    if (/\bclose\b/i.test(res.headers.connection ?? "")) this.#keepAlive = false;
    if (!noBody && !length) {
      if (this.#http10)
        this.#keepAlive = false; // close-delimited
      else this.#chunked = true;
    }
    const out: string[] = [];
    const raw = res.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) if (!NOT_RELAYED.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
    if (this.#chunked) out.push("Transfer-Encoding", "chunked");
    this.#slot.push(head(status, res.statusMessage ?? "", out, this.#end, this.#keepAlive));
    if (!this.#keepAlive) this.#slot.close = true;
    this.#pass();
    res.on("data", (chunk: Buffer) => {
      if (this.#chunked) this.#slot.push(`${chunk.length.toString(16)}\r\n`);
      this.#slot.push(chunk);
      if (this.#chunked) this.#slot.push("\r\n");
      this.#pass();
    });
    res.on("end", () => {
      if (this.#chunked) this.#slot.push("0\r\n\r\n");
      this.#slot.ended = true;
      this.#finish();
      this.#pass();
    });
    res.on("error", (err) => this.#fail(err));
  }

  /** Writes what the slot holds when it is at the front; waits (pauses the answer) on a full socket or buffer. */
  #pass(): void {
    const res = this.#res;
    if (this.#outbox.isFront(this.#slot)) {
      this.#outbox.flush();
      if (res !== undefined && !res.isPaused() && this.#socket.writableNeedDrain && !this.#slot.ended) {
        res.pause();
        this.#socket.once("drain", () => res.resume());
      }
    } else if (res !== undefined && this.#slot.partBytes > BUFFER_LIMIT && !res.isPaused()) {
      res.pause();
      this.#slot.onFront = () => res.resume();
    }
  }

  #fail(err: Error): void {
    if (this.#done) return;
    this.#finish();
    if (this.#res !== undefined) {
      // Part of the answer may be out: the client can only learn of the failure by the connection closing.
      this.#socket.destroy();
      return;
    }
    const e = new AnyServeError("INTERNAL", `the API server's HTTP server did not answer a relayed request: ${err.message}`);
    const { head: text, answer } = errorHead(e, this.#end, false);
    this.#outbox.finish(this.#slot, text, answer.body, true);
  }

  #finish(): void {
    this.#done = true;
    this.onDone?.(this);
  }
}
