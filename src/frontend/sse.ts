/**
 * Server-sent events for streamed answers: one `data: <json>` event per chunk, errors as
 * `data: {"error", "code"}`. Headers go out with the first chunk, so an error that happens
 * before anything was streamed is still a plain HTTP error with its status.
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

  /** Writes one event whose data is a JSON document (must not contain a raw newline; JSON.stringify never emits one). */
  data(json: Buffer): void {
    this.#start();
    this.#res.write(DATA);
    this.#res.write(json);
    this.#res.write(END);
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
