// Answers written at the end of the event-loop turn (http-util.ts endAtEndOfTurn), over real
// sockets: cheap answers are not written while the turn still serves requests, then all of them,
// in order; a slow answer goes at once, with those waiting before it; a response whose client
// left, or whose head is invalid, does not keep the others from going out.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { endAtEndOfTurn } from "../../src/frontend/end-of-turn.js";

async function serve(t: test.TestContext, handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** Sends raw bytes on one connection (the last request says `Connection: close`) and collects everything until the server closes it. */
function exchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(raw));
    let got = "";
    socket.setEncoding("latin1");
    socket.on("data", (c: string) => (got += c));
    socket.on("end", () => resolve(got));
    socket.on("error", reject);
  });
}

test("an answer goes out after the turn, not when it is handed over; pipelined answers keep their order", async (t) => {
  const sentAtCall: boolean[] = [];
  const port = await serve(t, (req, res) => {
    req.resume();
    req.on("end", () => {
      const body = Buffer.from(`answer to ${req.url}`);
      endAtEndOfTurn(res, 200, { "content-type": "text/plain", "content-length": body.length }, body, 0.01);
      sentAtCall.push(res.headersSent);
    });
  });
  const get = (p: string, last = false): string => `GET ${p} HTTP/1.1\r\nHost: x\r\n${last ? "Connection: close\r\n" : ""}\r\n`;
  // A held answer goes out with the next one once it has waited 1 ms (HOLD_MAX_MS): on a busy
  // machine the three requests of one turn can take that long. Time stands still here, so the
  // test checks the turn, not the machine's speed.
  const realNow = performance.now;
  performance.now = () => 1_000;
  let got: string;
  try {
    got = await exchange(port, get("/a") + get("/b") + get("/c", true));
  } finally {
    performance.now = realNow;
  }
  assert.deepEqual(sentAtCall, [false, false, false], "nothing is written while the turn is still serving");
  const bodies = [...got.matchAll(/answer to (\/\w)/g)].map((m) => m[1]);
  assert.deepEqual(bodies, ["/a", "/b", "/c"]);
  assert.equal(got.match(/HTTP\/1\.1 200 OK/g)?.length, 3);
});

test("a client that left is skipped and a broken answer is dropped; the turn's other answers still go out", async (t) => {
  let served = 0;
  const waiting: (() => void)[] = [];
  const port = await serve(t, (req, res) => {
    req.resume();
    req.on("end", () => {
      // Hold the answers until all three requests are here, then hand them over in one turn.
      waiting.push(() => {
        const body = Buffer.from(`ok ${req.url}`);
        if (req.url === "/gone") res.destroy();
        const headers: Record<string, string | number> = { "content-length": body.length };
        if (req.url === "/broken") headers["x-bad"] = "line\nbreak"; // writeHead throws: invalid header value
        endAtEndOfTurn(res, 200, headers, body, 0.01);
      });
      if (++served === 3) for (const w of waiting) w();
    });
  });
  const one = (p: string): Promise<string> => exchange(port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`).catch(() => "");
  const [gone, broken, good] = await Promise.all([one("/gone"), one("/broken"), one("/good")]);
  assert.equal(gone, "", "the destroyed response wrote nothing");
  assert.equal(broken, "", "the answer whose head was invalid was dropped with its connection");
  assert.match(good, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok \/good$/);
});

test("a slow answer is not held: it goes at once, after the cheap ones waiting before it", async (t) => {
  const order: string[] = [];
  const responses: http.ServerResponse[] = [];
  const port = await serve(t, (req, res) => {
    req.resume();
    req.on("end", () => {
      responses.push(res);
      res.on("finish", () => order.push(req.url!));
      if (responses.length < 2) return;
      const [cheap, slow] = responses as [http.ServerResponse, http.ServerResponse];
      const body = Buffer.from("x");
      endAtEndOfTurn(cheap, 200, { "content-length": 1 }, body, 0.01);
      assert.equal(cheap.headersSent, false, "the cheap answer waits for the end of the turn");
      endAtEndOfTurn(slow, 200, { "content-length": 1 }, body, 5);
      assert.equal(slow.headersSent, true, "an answer that took 5 ms is written at once");
      assert.equal(cheap.headersSent, true, "and the one waiting before it goes first");
    });
  });
  const one = (p: string): Promise<string> => exchange(port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const [a, b] = await Promise.all([one("/first"), one("/second")]);
  assert.match(a, /^HTTP\/1\.1 200 OK/);
  assert.match(b, /^HTTP\/1\.1 200 OK/);
  assert.deepEqual(order.sort(), ["/first", "/second"]);
});
