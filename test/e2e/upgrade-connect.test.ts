// Connections that offered an upgrade, or sent CONNECT, are answered, not dropped (issue 25 #10):
// a replica (which takes the frame protocol's upgrade on its REST port) and the API server (node:http
// and the fast ingress) answer a request offering `h2c`, `websocket` or the frame protocol on an
// ordinary route as the plain HTTP/1.1 request it also is, and CONNECT with 405 and the catalogue's
// JSON body. Real processes, raw sockets.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Cleanups, FIXTURES, registryIds, startApiServerProc, startCli, waitFor, type Proc } from "../helpers/processes.js";
import { Wire } from "../helpers/http-wire.js";
import { rawRequest } from "../helpers/raw-http.js";

const hooks = new Cleanups();
let api: Proc;
let fast: Proc;
let replica: Proc;

const BODY = JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["hi"] }] });
const OFFERS: Record<string, string[]> = {
  h2c: ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"],
  websocket: ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"],
  frames: ["Connection: upgrade", "Upgrade: anyserve-frames"],
};

function port(url: string): number {
  return Number(new URL(url).port);
}

describe("upgrade offers and CONNECT", () => {
  before(async () => {
    [api, fast] = await Promise.all([startApiServerProc(hooks), startApiServerProc(hooks, ["--fast-ingress"])]);
    replica = await startCli(hooks, [
      "start",
      "--app",
      `${FIXTURES}/test_app.ts:app`,
      "--port",
      "0",
      "--api-server",
      api.ready.url!,
      "--health-check-interval",
      "0.5",
    ]);
    await startCli(hooks, ["start", "--app", `${FIXTURES}/test_app.ts:app`, "--port", "0", "--api-server", fast.ready.url!]);
    await waitFor(
      "the replicas registered",
      async () => (await registryIds(api.ready.url!)).length + (await registryIds(fast.ready.url!)).length === 2,
    );
  });
  after(() => hooks.run());

  for (const [offer, lines] of Object.entries(OFFERS)) {
    test(`a request offering ${offer} on an ordinary route gets its ordinary answer, from every server`, async () => {
      for (const [what, url] of [
        ["replica", replica.ready.http!],
        ["API server", api.ready.url!],
        ["fast ingress", fast.ready.url!],
      ] as const) {
        const live = await rawRequest(port(url), [
          `GET /v2/health/live HTTP/1.1\r\nHost: x\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n`,
        ]);
        assert.equal(live.status, 200, `${what}: GET /v2/health/live offering ${offer}`);
        assert.deepEqual(JSON.parse(live.body), { live: true });
        const infer = await rawRequest(port(url), [
          `POST /infer/json HTTP/1.1\r\nHost: x\r\nX-Capability-Type: echo\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(BODY)}\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n${BODY}`,
        ]);
        assert.equal(infer.status, 200, `${what}: POST /infer/json offering ${offer}: ${infer.body}`);
        assert.equal((JSON.parse(infer.body) as { outputs: { data: string[] }[] }).outputs[0]!.data[0], "hi");
      }
    });
  }

  test("CONNECT: 405 METHOD_NOT_ALLOWED with the catalogue's body, then the connection closes", async () => {
    for (const [what, url] of [
      ["replica", replica.ready.http!],
      ["API server", api.ready.url!],
      ["fast ingress", fast.ready.url!],
    ] as const) {
      const r = await rawRequest(port(url), ["CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"]);
      assert.equal(r.status, 405, what);
      const body = JSON.parse(r.body) as { code: string; error: string };
      assert.equal(body.code, "METHOD_NOT_ALLOWED", what);
      assert.match(body.error, /CONNECT "example\.com:443" is not allowed/);
      assert.equal(r.headers.connection, "close", `${what}: the connection closes after the answer`);
    }
  });

  test("an upgrade offer on a control route with a body and a request pipelined behind: answered, then closed (API server, both ingresses)", async () => {
    // Found by the heavy fuzz run (seed 424242, cases 3253 and 4359): with no 'upgrade' listener,
    // node:http answered the offer's head on keep-alive and never read what followed.
    const body = '{"replica_id":"nobody"}';
    for (const [what, url] of [
      ["API server", api.ready.url!],
      ["fast ingress", fast.ready.url!],
    ] as const) {
      const wire = await Wire.open(port(url));
      try {
        wire.write(
          `DELETE /unregister HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${OFFERS.h2c!.map((l) => `${l}\r\n`).join("")}` +
            `Content-Length: ${body.length}\r\n\r\n${body}GET /health HTTP/1.1\r\nHost: x\r\n\r\n`,
        );
        const [first] = await wire.next(1);
        assert.equal(first!.status, 404, `${what}: ${first!.body}`);
        assert.equal((JSON.parse(first!.body) as { code: string }).code, "REPLICA_NOT_FOUND", what);
        assert.ok(await wire.closesWithin(2_000), `${what}: the connection closes after the answer`);
      } finally {
        wire.destroy();
      }
    }
  });

  test("CONNECT after an inference on the same connection (fast ingress): answered too, then closed", async () => {
    const wire = await Wire.open(port(fast.ready.url!));
    try {
      wire.write(
        `POST /infer/json HTTP/1.1\r\nHost: x\r\nX-Capability-Type: echo\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(BODY)}\r\n\r\n${BODY}CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`,
      );
      const [first, second] = await wire.next(2);
      assert.equal(first!.status, 200);
      assert.equal(second!.status, 405);
      assert.equal((JSON.parse(second!.body) as { code: string }).code, "METHOD_NOT_ALLOWED");
      assert.ok(await wire.closesWithin(2_000), "the connection closes after the 405");
    } finally {
      wire.destroy();
    }
  });
});
