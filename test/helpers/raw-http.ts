/**
 * Sends bytes over a raw TCP socket and reads one HTTP response, so cases that a well-behaved
 * client cannot send (smuggling, bad headers, trickled bytes) reach the server's parser.
 */
import { connect } from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection after answering. */
  closed: boolean;
}

export function rawRequest(
  port: number,
  parts: (string | Buffer)[],
  opts: { gapMs?: number; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = Buffer.alloc(0);
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`no complete answer within ${opts.timeoutMs ?? 10_000} ms; got ${JSON.stringify(data.toString("latin1").slice(0, 300))}`),
      );
    }, opts.timeoutMs ?? 10_000);
    const tryParse = (): RawResponse | undefined => {
      const text = data.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return undefined;
      const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const body = data.subarray(Buffer.byteLength(text.slice(0, end + 4), "latin1"));
      const length = headers["content-length"] === undefined ? undefined : Number(headers["content-length"]);
      if (length !== undefined && body.length < length) return undefined;
      if (length === undefined && !closed) return undefined;
      return { status: Number(statusLine!.split(" ")[1]), headers, body: body.subarray(0, length ?? body.length).toString("utf8"), closed };
    };
    const finish = (): void => {
      const r = tryParse();
      if (!r) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      finish();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      closed = true;
      finish();
      clearTimeout(timer);
      if (!tryParse())
        reject(new Error(`connection closed without a complete answer: ${JSON.stringify(data.toString("latin1").slice(0, 300))}`));
    });
    socket.on("connect", async () => {
      for (const p of parts) {
        if (socket.destroyed) return;
        socket.write(p);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    });
  });
}

/** A POST with a JSON-ish body and the given extra header lines. */
export function post(path: string, body: string | Buffer, headers: string[] = []): (string | Buffer)[] {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  return [`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.length}\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n`, b];
}
