/**
 * One client connection of the fast ingress. llhttp reads the socket's libuv handle directly in
 * C++ ("consume" mode, as node:http does: no `data` events, no JS Buffers for headers); its
 * callbacks below give every request a slot in the {@link Outbox}, in order, and then either call
 * the backend (hot routes), relay it to node:http (anything else, see relay.ts), or answer an error.
 * The first request of a connection that is not hot makes the whole connection node:http's.
 *
 * Nothing here allocates per request beyond the request's own objects (slot, headers, call and its
 * Cancellation — a plain object, not an AbortController): callbacks are bound once per connection,
 * and an answer is one write (several pipelined answers ready together, one corked write).
 */
import type { Socket } from "node:net";
import { AnyServeError } from "../../errors.js";
import type { EncodedBody } from "../../protocol/types.js";
import { Cancellation } from "../../util/cancel.js";
import type { IncomingCall } from "../../protocol/call.js";
import { EMPTY, expectationFailed, noHost, parseError } from "../../util/http.js";
import { checkBodyHeaders, tooLarge } from "../../util/request-body.js";
import type { IngressContext } from "./context.js";
import { callOf, hotRoute } from "./hot-route.js";
import { allocParser, freeParser, K, METHODS, STOP_AFTER_HEADERS, type ParseError, type Parser } from "./llhttp.js";
import { Outbox, Slot, type OutboxOwner } from "./outbox.js";
import { HELD, QUEUE, ReadGate, UPLOAD, WRITE } from "./read-gate.js";
import { abandoned, closeReason, newProgress, stallError, writeStalled } from "../../util/write-guard.js";
import { Relay } from "./relay.js";
import { checkHead, headerBag, keptHeaders } from "./request-head.js";
import { BAD_CONTENT_TYPE, CONTINUE, errorHead, okHead } from "./response.js";
import type { BodyHold } from "../../util/body-budget.js";

/** Where a connection is, for the ingress's timeout sweep. */
const Phase = { IDLE: 0, HEADERS: 1, BODY: 2, WAIT: 3, CLOSING: 4 } as const;
type PhaseValue = (typeof Phase)[keyof typeof Phase];

/**
 * The sweep's limits (ms): node:http's headers, request and keep-alive timeouts, the closing
 * linger (util/http.ts `lingerClose`: idle time without a byte from the client, and its most),
 * `write_timeout`.
 */
export interface Timeouts {
  headersMs: number;
  requestMs: number;
  keepAliveMs: number;
  lingerMs: number;
  lingerMaxMs: number;
  writeMs: number;
}

const CONNECT = METHODS.indexOf("CONNECT");

export class Connection implements OutboxOwner {
  readonly socket: Socket;
  readonly #ctx: IngressContext;
  readonly #gate: ReadGate;
  readonly #outbox: Outbox;
  #parser: Parser | undefined;
  /** For the sweep: where the connection is, and since when (ms). */
  phase: PhaseValue = Phase.HEADERS;
  since = Date.now();
  /** Whether the client takes what is written (write_timeout). */
  readonly #progress = newProgress(this.since);
  /** Before the first request's headers are complete: its bytes are kept, in case node:http takes over. */
  #first = true;
  #saved: Buffer[] | undefined;
  #handingOver = false;
  /** No more requests are taken (a closing answer is queued, the client ended, a parse error). */
  #closing = false;
  #relays: Set<Relay> | undefined;
  // The request being parsed.
  #raw: string[] | undefined;
  #rawUrl = "";
  #slot: Slot | undefined;
  #keepAlive = true;
  #call: IncomingCall | undefined;
  #chunks: Buffer[] | undefined;
  #size = 0;
  /** The share of the server's body budget the request being read holds; handed to its call once read whole. */
  #hold: BodyHold | undefined;
  /** The request's Content-Length; undefined for a chunked body. */
  #declared: number | undefined;
  #relay: Relay | undefined;
  /** A parse error (or timeout) is being answered: the connection closes after it. */
  #parseFailed = false;
  /** When the linger began (its last answer written): it ends by `lingerMaxMs` after, whatever the client sends. */
  #lingerFrom = 0;

  constructor(socket: Socket, ctx: IngressContext) {
    this.socket = socket;
    this.#ctx = ctx;
    this.#gate = new ReadGate(socket);
    this.#outbox = new Outbox(socket, this);
    const p = allocParser(ctx.maxHeaderSize);
    p[K.messageBegin] = this.#onMessageBegin;
    p[K.headers] = this.#onHeaders;
    p[K.headersComplete] = this.#onHeadersComplete;
    p[K.body] = this.#onBody;
    p[K.messageComplete] = this.#onMessageComplete;
    p[K.execute] = this.#onExecute;
    p.consume(this.#gate.handle);
    this.#parser = p;
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onClose);
    socket.on("error", this.#onError);
    socket.on("drain", this.#onDrain);
    // Flowing, so the stream reports the client's FIN ('end'); the data itself goes to the parser.
    socket.resume();
  }

  /** Called by the sweep with the time: applies the write, headers, request, keep-alive and linger timeouts. */
  tick(now: number, t: Timeouts): void {
    if (writeStalled(this.socket, this.#progress, now, t.writeMs)) {
      // A client that takes none of its answers: cut, its calls cancelled with this reason (#onClose).
      this.socket.destroy(stallError(t.writeMs));
      return;
    }
    if ((this.phase === Phase.IDLE || this.phase === Phase.CLOSING) && this.socket.writableLength > 0) {
      // Answers still being written (a client reading slowly) are not an idle connection: the
      // keep-alive time (or the linger) starts once they are out, as node:http's starts at 'finish'.
      this.since = now;
      this.#lingerFrom = now;
      return;
    }
    const age = now - this.since;
    if (this.phase === Phase.HEADERS ? age > t.headersMs : this.phase === Phase.BODY ? age > t.requestMs : false) {
      this.#fatal(parseError("ERR_HTTP_REQUEST_TIMEOUT"));
    } else if (
      this.phase === Phase.IDLE
        ? age > t.keepAliveMs
        : this.phase === Phase.CLOSING && (age > t.lingerMs || now - this.#lingerFrom > t.lingerMaxMs)
    ) {
      this.socket.destroy();
    }
  }

  /**
   * Server shutdown: no new requests; idle connections close now, busy ones after their answers. A
   * request still arriving would never be served: it gets 503, as a timed-out one gets 408.
   */
  shutdown(): void {
    if (this.#closing) return;
    if (this.#slot !== undefined && !this.#slot.ended) {
      this.#fatal(new AnyServeError("SHUTTING_DOWN", "the API server is closing"));
      return;
    }
    this.#closing = true;
    if (this.#outbox.length === 0) this.socket.destroy();
    else this.#endWhenDrained();
  }

  #onMessageBegin = (): void => {
    if (this.#closing) return;
    this.phase = Phase.HEADERS;
    this.since = Date.now();
  };

  /**
   * Headers that did not fit one read (or more than 32): collected until the head is complete, as
   * node:http collects them — only while fewer than it keeps (the rest are dropped, not refused;
   * llhttp still bounds the head's size). Trailers are ignored.
   */
  #onHeaders = (headers: string[], url: string): void => {
    if (this.#slot !== undefined || this.#closing) return;
    const raw = (this.#raw ??= []);
    if (raw.length < 2 * this.#ctx.maxHeaders) raw.push(...headers);
    this.#rawUrl += url;
  };

  #onHeadersComplete = (
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    _status: unknown,
    _message: unknown,
    upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    if (this.#closing) return 0;
    if (headers === undefined) headers = this.#raw ?? [];
    if (url === undefined) url = this.#rawUrl;
    this.#raw = undefined;
    this.#rawUrl = "";
    this.phase = Phase.BODY;
    if (method === CONNECT) return this.#refuseConnect(url);
    const name = METHODS[method] ?? "";
    const route = upgrade ? undefined : hotRoute(name, url);
    if (this.#first) {
      this.#first = false;
      if (route === undefined) {
        // Not ours: node:http gets the connection from its first byte (see kOnExecute).
        this.#handingOver = true;
        return STOP_AFTER_HEADERS;
      }
      this.#saved = undefined;
    }
    const slot = new Slot();
    this.#slot = slot;
    this.#outbox.add(slot);
    if (this.#outbox.length >= this.#ctx.maxPipelined) this.#gate.pause(QUEUE);
    // An upgrade or CONNECT after other requests: relayed as a plain request, then the connection closes.
    this.#keepAlive = keepAlive && !upgrade && method !== CONNECT;
    if (!this.#keepAlive) slot.close = true;
    try {
      const bag = headerBag(keptHeaders(headers, this.#ctx.maxHeaders));
      const verdict = checkHead(bag, major, minor);
      if (verdict.refuse === 417) return this.#fatal(expectationFailed(bag.expect));
      if (verdict.refuse !== undefined) return this.#fatal(noHost());
      const expectContinue = verdict.expectContinue;
      if (route === undefined) return this.#startRelay(slot, name, url, headers, minor === 0, expectContinue);
      try {
        // Fired when the client leaves before the answer (see #abortAll).
        slot.cancel = new Cancellation();
        const call = callOf(route, bag, this.#ctx.limits, slot.cancel);
        const declared = checkBodyHeaders(bag, this.#ctx.maxBodyBytes);
        const hold = this.#ctx.bodyBudget?.hold();
        // A declared body is taken from the budget whole, before any of it is read.
        if (hold !== undefined && declared !== undefined && declared > 0 && !hold.take(declared)) throw hold.overloaded(declared);
        this.#hold = hold;
        this.#declared = declared;
        this.#call = call;
        this.#chunks = undefined;
        this.#size = 0;
      } catch (err) {
        this.#ctx.onRejected?.(AnyServeError.from(err, "INTERNAL").code);
        // A client waiting for 100 Continue sends no body: nothing to skip, the connection closes.
        return this.#answerError(slot, err, expectContinue);
      }
      if (expectContinue) this.#interim(slot, CONTINUE);
      return 0;
    } catch (err) {
      // Never throw into llhttp's C++ frame: an unexpected failure answers 500 and closes.
      this.#ctx.logger?.error({ err }, "fast ingress: failed to take a request");
      this.#answerError(slot, new AnyServeError("INTERNAL", `fast ingress: ${(err as Error).message}`), true);
      return this.#closeAfter();
    }
  };

  /** `CONNECT`: 405 with the catalogue's body, then close (as node:http's port answers it: util/http.ts `hardenServer`). */
  #refuseConnect(target: string): number {
    this.#first = false;
    this.#saved = undefined;
    const slot = new Slot();
    slot.close = true;
    this.#outbox.add(slot);
    this.#ctx.onRejected?.("METHOD_NOT_ALLOWED");
    const err = new AnyServeError(
      "METHOD_NOT_ALLOWED",
      `CONNECT ${JSON.stringify(target.slice(0, 200))} is not allowed: anyserve is not a proxy`,
    );
    this.#answerError(slot, err, true);
    return this.#closeAfter();
  }

  #onBody = (chunk: Buffer): void => {
    if (this.#closing) return;
    if (this.#relay !== undefined) {
      if (!this.#relay.write(chunk)) this.#gate.pause(UPLOAD);
      return;
    }
    if (this.#call === undefined) return; // answered already (an error): the rest is skipped
    this.#size += chunk.length;
    if (this.#size > this.#ctx.maxBodyBytes) {
      this.#dropBody();
      this.#ctx.onRejected?.("PAYLOAD_TOO_LARGE");
      this.#answerError(this.#slot!, tooLarge(this.#ctx.maxBodyBytes, this.#size, true), true);
      return;
    }
    // A chunked body (no Content-Length) takes from the budget as it arrives.
    const hold = this.#hold;
    if (hold !== undefined && this.#declared === undefined && !hold.take(chunk.length)) {
      this.#dropBody();
      this.#ctx.onRejected?.("SERVER_OVERLOADED");
      this.#answerError(this.#slot!, hold.overloaded(chunk.length), true);
      return;
    }
    (this.#chunks ??= []).push(chunk);
  };

  #onMessageComplete = (): void => {
    if (this.#closing || this.#handingOver) return;
    const slot = this.#slot;
    const call = this.#call;
    this.#slot = undefined;
    this.#call = undefined;
    // An answer written already (an error refused from the headers) leaves nothing to wait for.
    this.phase = this.#outbox.length > 0 ? Phase.WAIT : Phase.IDLE;
    this.since = Date.now();
    if (this.#relay !== undefined) {
      this.#relay.end();
      this.#relay = undefined;
    } else if (call !== undefined && slot !== undefined) {
      const chunks = this.#chunks;
      const hold = this.#hold;
      this.#chunks = undefined;
      this.#hold = undefined;
      call.body = chunks === undefined ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size);
      this.#serve(call, slot, this.#keepAlive, hold);
    }
    if (!this.#keepAlive) this.#closeAfter();
  };

  /** After each read: hand over, keep the first request's bytes, or answer a parse error. */
  #onExecute = (ret: number | ParseError): void => {
    const parser = this.#parser!;
    if (this.#handingOver) {
      const bytes = this.#saved === undefined ? parser.getCurrentBuffer() : Buffer.concat([...this.#saved, parser.getCurrentBuffer()]);
      this.#detach();
      this.#ctx.handOver(this.socket, bytes);
      return;
    }
    if (this.#first) (this.#saved ??= []).push(parser.getCurrentBuffer());
    // Bytes while lingering are dropped, and keep the linger going (its idle time starts again).
    if (this.phase === Phase.CLOSING) this.since = Date.now();
    if (typeof ret !== "number" && !this.#closing) this.#fatal(parseError(ret.code, ret.reason));
  };

  /** One `.then`, not an async function: a promise and a microtask fewer per request. */
  #serve(call: IncomingCall, slot: Slot, keepAlive: boolean, hold: BodyHold | undefined): void {
    let answer: Promise<EncodedBody>;
    try {
      answer = this.#ctx.backend.infer(call);
    } catch (err) {
      hold?.release();
      this.#answerError(slot, err, !keepAlive);
      return;
    }
    answer.then(
      (out) => {
        // The body's bytes were held until the answer (a retry on another replica sends it again).
        hold?.release();
        // Nothing awaits this callback: what it throws is answered here, not left unhandled.
        try {
          const text = okHead(out, call.requestId, this.#ctx.end, keepAlive);
          if (text === undefined) this.#answerError(slot, BAD_CONTENT_TYPE(), !keepAlive);
          else this.#outbox.finish(slot, text, out.body, false);
        } catch (err) {
          this.#answerError(slot, err, !keepAlive);
        }
      },
      (err: unknown) => {
        hold?.release();
        this.#answerError(slot, err, !keepAlive);
      },
    );
  }

  /** The request being read will not be served: its body so far is dropped and its budget given back. */
  #dropBody(): void {
    this.#call = undefined;
    this.#chunks = undefined;
    this.#hold?.release();
    this.#hold = undefined;
  }

  /**
   * A slot's error answer; the connection closes after it when asked, or when the error says so
   * (413). For the request being read, that also means no further request is taken.
   */
  #answerError(slot: Slot, err: unknown, close: boolean): number {
    const e = errorHead(err, this.#ctx.end, !close && !slot.close);
    this.#outbox.finish(slot, e.head, e.answer.body, e.close);
    if (e.close && slot === this.#slot) this.#closeAfter();
    return 0;
  }

  /**
   * The error answer (parse error, timeout, head rules, shutdown) for the request being read,
   * after the answers of those before it, then close — as util/http.ts's 'clientError' has
   * node:http do.
   */
  #fatal(err: AnyServeError): number {
    this.#parseFailed = true;
    let slot = this.#slot;
    this.#dropBody();
    if (this.#relay !== undefined) {
      // A relayed request cut short: if its answer already began, the connection can only close.
      const answered = this.#relay.answered;
      this.#relay.abort();
      this.#relay = undefined;
      if (answered) {
        this.socket.destroy();
        return 0;
      }
    }
    if (slot?.ended === true) {
      // The bytes are the body of a request already answered (refused from its headers): that
      // answer stands and the connection closes after it, as util/http.ts has node:http do.
      this.#ctx.onRejected?.(err.code);
      return this.#closeAfter();
    }
    if (slot === undefined) {
      slot = new Slot();
      this.#outbox.add(slot);
    }
    this.#ctx.onRejected?.(err.code);
    const e = errorHead(err, this.#ctx.end, false);
    this.#outbox.finish(slot, e.head, e.answer.body, true);
    return this.#closeAfter();
  }

  /** `100 Continue` (or any bytes) ahead of a slot's answer, sent now if the slot is at the front. */
  #interim(slot: Slot, text: string): void {
    slot.push(text);
    if (this.#outbox.isFront(slot)) this.#outbox.flush();
  }

  #startRelay(slot: Slot, method: string, url: string, rawHeaders: string[], http10: boolean, expectContinue: boolean): number {
    const target = this.#ctx.relayTarget();
    if (target === undefined) return this.#answerError(slot, new AnyServeError("SHUTTING_DOWN", "the API server is closing"), true);
    if (expectContinue) this.#interim(slot, CONTINUE);
    const relay = new Relay(
      target,
      { method, url, rawHeaders, http10, keepAlive: this.#keepAlive },
      slot,
      this.#outbox,
      this.socket,
      this.#ctx.end,
    );
    relay.onBodyDrain = () => this.#gate.resume(UPLOAD);
    relay.onDone = (r) => this.#relays?.delete(r);
    (this.#relays ??= new Set()).add(relay);
    this.#relay = relay;
    return 0;
  }

  /** No more requests on this connection: the last queued answer closes it. */
  #closeAfter(): number {
    this.#closing = true;
    this.#dropBody();
    if (this.#relay !== undefined) {
      this.#relay.end();
      this.#relay = undefined;
    }
    this.#endWhenDrained();
    return 0;
  }

  /** The connection ends after the answers already queued (at once when there are none). */
  #endWhenDrained(): void {
    if (this.#outbox.closed) return;
    if (this.#outbox.length === 0) this.afterFlush(true, true);
    else this.#outbox.closeAfterLast();
  }

  /** From the outbox: after writes. Starts the linger once a closing answer went out; backpressure. */
  afterFlush(empty: boolean, closed: boolean): void {
    if (closed) {
      this.#closing = true;
      if (this.phase === Phase.CLOSING) return;
      this.phase = Phase.CLOSING;
      this.since = Date.now();
      this.#lingerFrom = this.since;
      // FIN after the answer; reading goes on (discarded) until the client closes or the linger ends,
      // so unread input does not turn the close into a reset that could eat the answer.
      // Once the client ended too, the socket closes itself (autoDestroy).
      this.socket.end();
      this.#gate.open();
      return;
    }
    if (empty && this.phase === Phase.WAIT) {
      this.phase = Phase.IDLE;
      this.since = Date.now();
    }
    if (this.#gate.isPaused(QUEUE) && this.#outbox.length < this.#ctx.maxPipelined) this.#gate.resume(QUEUE);
    if (this.#gate.isPaused(HELD) && this.#outbox.held <= this.#ctx.maxHeldBytes) this.#gate.resume(HELD);
    if (this.socket.writableNeedDrain) this.#gate.pause(WRITE);
  }

  /** From the outbox: answers wait behind an earlier one; past the cap no further request is read until they go out. */
  afterHold(held: number): void {
    if (held > this.#ctx.maxHeldBytes) this.#gate.pause(HELD);
  }

  #onDrain = (): void => this.#gate.resume(WRITE);

  /**
   * The client's FIN, as node:http (whose `httpAllowHalfOpen` is false) takes it: a request cut
   * short is a parse error, answered after the answers before it; otherwise — between requests, or
   * once a parse error is being answered — the client left: calls in flight are cancelled, answers
   * not yet written are dropped, and the connection ends.
   */
  #onEnd = (): void => {
    if (this.phase === Phase.CLOSING) return;
    const ret = this.#parseFailed ? undefined : this.#parser?.finish();
    if (ret instanceof Error) {
      this.#fatal(parseError((ret as ParseError).code, (ret as ParseError).reason));
      return;
    }
    this.#closing = true;
    this.#abortAll();
    this.afterFlush(true, true);
  };

  #onError = (): void => undefined; // 'close' follows
  #onClose = (): void => {
    this.#abortAll();
    this.#detach();
    abandoned(this.#progress);
  };

  /** The client is gone (or was cut): every call in flight is cancelled, every relay dropped, queued answers forgotten. */
  #abortAll(): void {
    this.#outbox.cancelAll(closeReason(this.socket));
    if (this.#relays !== undefined) for (const r of this.#relays) r.abort();
    this.#relays = undefined;
    this.#relay = undefined;
    this.#dropBody();
  }

  /** Stops listening to the socket and frees the parser (closed, or handed over). */
  #detach(): void {
    const socket = this.socket;
    socket.off("end", this.#onEnd);
    socket.off("close", this.#onClose);
    socket.off("error", this.#onError);
    socket.off("drain", this.#onDrain);
    if (this.#parser !== undefined) {
      freeParser(this.#parser, true);
      this.#parser = undefined;
    }
    this.#ctx.forget(this);
  }
}
