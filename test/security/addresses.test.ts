// The metadata-address filter and the control-plane token (issue 25 #4), against an API server
// process with a token: every spelling of a link-local or metadata address is refused at
// registration, and nothing anyserve sends to a registered endpoint — health probes, forwarded
// requests, the management API's worker calls, a direct client's frames, an object fetch — carries
// the control-plane token: the gateway shows a replica its own secret, peers a key derived from
// the token.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { fetchFromPeer } from "../../src/objects/remote.js";
import { Client } from "../../src/sdk/client.js";
import { attachFrameServer } from "../../src/transport/frame-server.js";
import { peerKeyOf } from "../../src/util/auth.js";
import { Cleanups, type Proc, startCli, waitFor } from "../helpers/processes.js";

const TOKEN = "the-control-plane-token-of-this-test";
const auth = { authorization: `Bearer ${TOKEN}` };

function register(api: string, body: unknown): Promise<Response> {
  return fetch(`${api}/register`, { method: "POST", headers: { "content-type": "application/json", ...auth }, body: JSON.stringify(body) });
}

describe("registered endpoints: no metadata address in any spelling, and never the control-plane token", () => {
  const hooks = new Cleanups();
  let api: Proc;
  /** Every request and upgrade the stand-in replica got. */
  const seen: IncomingMessage[] = [];
  let fake: string;
  let secret: string;

  before(async () => {
    // Probes every 0.2 s; the stand-in never heartbeats, so it says a long interval and stays registered.
    api = await startCli(hooks, ["api-server", "--port", "0", "--token", TOKEN, "--health-check-interval", "0.2"]);
    const server = createServer((req, res) => {
      seen.push(req);
      const missing = req.url?.startsWith("/objects/") === true;
      res.writeHead(missing ? 404 : 200, { "content-type": "application/json" });
      res.end(JSON.stringify(missing ? { error: "no such object", code: "OBJECT_NOT_FOUND" } : { success: true, capabilities: [] }));
    });
    // It speaks frames (healthy to probes, answers calls) and lets everyone in: what is recorded is what they show.
    server.on("upgrade", (req) => seen.push(req));
    const frames = attachFrameServer(
      server,
      (req, res) => {
        if (req.meta.k === "health") res.reply({ ct: "application/json" }, Buffer.from(JSON.stringify({ ready: true })));
        else
          res.reply(
            null,
            Buffer.from(JSON.stringify({ model_name: "fake", outputs: [{ name: "output", datatype: "BYTES", shape: [1], data: ["ok"] }] })),
          );
      },
      { authorize: () => "client" },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    hooks.after(() => {
      frames.close(); // the API server's frame connections (its probes) would hold the server open
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    });
    fake = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const res = await register(api.ready.url!, {
      replica_id: "stand-in",
      endpoint: "127.0.0.1:1",
      http_endpoint: fake,
      capabilities: [{ type: "fake" }],
      service: "fake",
      heartbeat_interval_ms: 3_600_000,
    });
    secret = ((await res.json()) as { replica_secret: string }).replica_secret;
  });
  after(() => hooks.run());

  test("link-local and metadata addresses are refused in every spelling, http_endpoint and endpoint alike", async () => {
    const cases: Record<string, string>[] = [
      { http_endpoint: "http://[::ffff:169.254.169.254]:80" },
      { http_endpoint: "http://[fd00:ec2::254]:80" },
      { http_endpoint: "http://[::ffff:a9fe:a9fe]:80" },
      { http_endpoint: "http://[64:ff9b::a9fe:a9fe]:80" },
      { http_endpoint: "http://2852039166:80" },
      { http_endpoint: "http://0xA9.0xFE.0xA9.0xFE:80" },
      { http_endpoint: "http://0251.0376.0251.0376:80" },
      { http_endpoint: "http://[fe80::1]:80" },
      { http_endpoint: "http://metadata.google.internal" },
      { endpoint: "[::ffff:169.254.169.254]:80" },
      { endpoint: "2852039166:80" },
    ];
    for (const extra of cases) {
      const res = await register(api.ready.url!, { replica_id: "meta", endpoint: "127.0.0.1:2", capabilities: [{ type: "m" }], ...extra });
      assert.equal(res.status, 400, JSON.stringify(extra));
      const err = (await res.json()) as { code: string; error: string };
      assert.equal(err.code, "URL_NOT_ALLOWED", JSON.stringify(extra));
      assert.match(err.error, /not allowed: .*(link-local|metadata)/);
    }
    const ids = ((await (await fetch(`${api.ready.url}/registry`, { headers: auth })).json()) as { replicas: { replica_id: string }[] })
      .replicas;
    assert.deepEqual(
      ids.map((r) => r.replica_id),
      ["stand-in"],
    );
  });

  test("probes, forwarded requests and worker calls show the replica its own secret, never the token", async () => {
    await waitFor("health probes at the stand-in", () => seen.some((r) => r.url === "/_anyserve/frames"));
    const answer = await fetch(`${api.ready.url}/infer`, {
      method: "POST",
      headers: { "x-capability-type": "fake", "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    const workers = await fetch(`${api.ready.url}/api/services/fake/workers`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: JSON.stringify({ action: "start" }),
    });
    assert.equal(workers.status, 200, await workers.clone().text());
    assert.ok(seen.some((r) => r.url === "/workers/start"));
    for (const r of seen) {
      assert.equal(r.headers.authorization, `Bearer ${secret}`, `${r.method} ${r.url}`);
      assert.ok(!JSON.stringify(r.headers).includes(TOKEN), `${r.method} ${r.url} carried the token`);
    }
  });

  test("a direct client with the token shows replicas the peer key; an object fetch too", async () => {
    const from = seen.length;
    const client = new Client({ apiServer: api.ready.url!, direct: true, token: TOKEN, timeout: 3_000 });
    try {
      assert.equal(await client.infer({ type: "fake" }, { x: 1 }), "ok"); // through the gateway while the table loads
      await waitFor("the route table", () => (client.routes()?.replicas.length ?? 0) === 1);
      assert.equal(await client.infer({ type: "fake" }, { x: 1 }), "ok");
    } finally {
      await client.close();
    }
    const frames = seen.slice(from).filter((r) => r.url === "/_anyserve/frames" && r.headers.authorization !== `Bearer ${secret}`);
    assert.ok(frames.length >= 1, "the direct client tried the stand-in's frame endpoint");
    for (const r of frames) assert.equal(r.headers.authorization, `Bearer ${peerKeyOf(TOKEN)}`);
    const before = seen.length;
    await fetchFromPeer({ method: "HEAD", base: fake, id: "obj-1", token: TOKEN, signal: AbortSignal.timeout(5_000) }).catch(
      () => undefined,
    );
    assert.equal(seen[before]!.url, "/objects/obj-1");
    assert.equal(seen[before]!.headers.authorization, `Bearer ${peerKeyOf(TOKEN)}`);
  });
});
