/**
 * Server-sent events for streamed answers: one `data: <json>` event per chunk, errors as
 * `data: {"error", "code"}`. Headers go out with the first chunk, so an error that happens
 * before anything was streamed is still a plain HTTP error with its status.
 *
 * Back-pressure: {@link SseWriter.data} says when the client's socket is full, and
 * {@link SseWriter.drained} waits until it is not, so the producer (the replica's frame window, the
 * handler's generator) waits for a slow client instead of buffering here. A client that takes
 * nothing for `write_timeout` is cut by the server's write guard (util/write-guard.ts).
 */
import type { ServerResponse } from "node:http";
import type { AnyServeError } from "../errors.js";

const DATA = Buffer.from("data: ");
const END = Buffer.from("\n\n");

export class SseWriter {
  readonly #res: ServerResponse;
  readonly #requestId: string;
  #started = false;

  constructor(res: ServerResponse, requestId: string) {
    this.#res = res;
    this.#requestId = requestId;
  }

  get started(): boolean {
    return this.#started;
  }

  /**
   * Writes one event whose data is a JSON document (must not contain a raw newline;
   * JSON.stringify never emits one). False when the client's socket is full: wait for
   * {@link drained} before the next.
   */
  data(json: Buffer): boolean {
    this.#start();
    const res = this.#res;
    res.cork();
    res.write(DATA);
    res.write(json);
    const room = res.write(END);
    res.uncork();
    return room;
  }

  /** Settles when the client's socket has room again, or the response closed (the client left, or was cut). */
  drained(): Promise<void> {
    const res = this.#res;
    if (res.destroyed || !res.writableNeedDrain) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.on("drain", done);
      res.on("close", done);
    });
  }

  error(err: AnyServeError): void {
    this.data(Buffer.from(JSON.stringify(err.toJSON())));
    this.#res.end();
  }

  end(): void {
    this.#start();
    this.#res.end();
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "x-request-id": this.#requestId,
      "x-accel-buffering": "no",
    });
    this.#res.flushHeaders();
  }
}
