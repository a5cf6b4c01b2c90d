// TLS for REST, gRPC and the gateway → replica frame hop (issue 24 #13): an API server and a
// replica, each its own process, serving TLS with a certificate from a CA this test makes with
// openssl. An HTTPS client and a TLS gRPC client get through — over TLS to the API server, then
// over TLS frames to the replica; plaintext clients do not; a client or gateway that does not
// trust the CA is refused. Then the same from a deployment file under `anyserve up`.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Agent, request } from "undici";
import { startApiServer } from "../../src/gateway/api-server.js";
import { Client } from "../../src/sdk/client.js";
import { silentLogger } from "../../src/util/logger.js";
import { readCa } from "../../src/util/tls.js";
import { makeCerts, type TestCerts } from "../helpers/certs.js";
import { Cleanups, FIXTURES, type Proc, startCli, startReplicaProc, waitFor } from "../helpers/processes.js";

const APP = `${path.join(FIXTURES, "test_app.ts")}:app`;
const BODY = JSON.stringify({ inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] });

/** An HTTPS request trusting `ca` only. */
async function https(url: string, ca: string, init: { method?: "GET" | "POST"; headers?: Record<string, string>; body?: string } = {}) {
  const dispatcher = new Agent({ connect: { ca: readCa(ca) } });
  try {
    const res = await request(url, { method: init.method ?? "GET", headers: init.headers ?? {}, body: init.body ?? null, dispatcher });
    return { status: res.statusCode, body: await res.body.text() };
  } finally {
    await dispatcher.close();
  }
}

const whoami = (url: string, ca: string) =>
  https(`${url}/infer`, ca, { method: "POST", headers: { "x-capability-type": "whoami", "content-type": "application/json" }, body: BODY });

describe("TLS between clients, the API server and a replica (separate processes)", () => {
  const hooks = new Cleanups();
  let certs: TestCerts;
  let api: Proc;
  let replica: Proc;

  before(async () => {
    certs = makeCerts(hooks);
    const tls = ["--tls-cert", certs.cert, "--tls-key", certs.key, "--tls-ca", certs.ca];
    api = await startCli(hooks, ["api-server", "--port", "0", "--grpc-port", "0", ...tls]);
    replica = await startReplicaProc(hooks, api.ready.url!, APP, ["--replica-id", "tls-1", ...tls]);
    await waitFor("the replica registered", async () => JSON.parse((await https(`${api.ready.url}/registry`, certs.ca)).body).total === 1);
  });
  after(() => hooks.run());

  test("the API server and the replica serve https, and the replica registered its https endpoint", async () => {
    assert.match(api.ready.url!, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(replica.ready.http!, /^https:\/\//);
    const registry = JSON.parse((await https(`${api.ready.url}/registry`, certs.ca)).body) as { replicas: { http_endpoint: string }[] };
    assert.equal(registry.replicas[0]!.http_endpoint, replica.ready.http);
  });

  test("an HTTPS client gets through: TLS to the API server, TLS frames to the replica", async () => {
    const res = await whoami(api.ready.url!, certs.ca);
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /tls-1/);
    const client = new Client({ apiServer: api.ready.url!, ca: readCa(certs.ca) });
    try {
      assert.equal(await client.infer({ type: "whoami" }, { x: 1 }), "tls-1");
    } finally {
      await client.close();
    }
    // The replica's own REST port, directly.
    assert.equal((await whoami(replica.ready.http!, certs.ca)).status, 200);
  });

  test("a TLS gRPC client gets through, to the API server and to the replica", async () => {
    for (const address of [api.ready.grpc!, replica.ready.grpc!]) {
      const client = new Client({ apiServer: address, protocol: "grpc", ca: readCa(certs.ca) });
      try {
        assert.equal(await client.infer({ type: "whoami" }, { x: 1 }), "tls-1", address);
      } finally {
        await client.close();
      }
    }
  });

  test("plaintext clients do not get through: HTTP and insecure gRPC are refused", async () => {
    const plain = api.ready.url!.replace("https://", "http://");
    await assert.rejects(fetch(`${plain}/v2/health/live`), "plain HTTP to the TLS port");
    await assert.rejects(fetch(`${replica.ready.http!.replace("https://", "http://")}/v2/health/live`), "plain HTTP to the replica");
    for (const address of [api.ready.grpc!, replica.ready.grpc!]) {
      const client = new Client({ apiServer: address, protocol: "grpc", timeout: 3_000 });
      try {
        await assert.rejects(client.infer({ type: "whoami" }, { x: 1 }), { code: "REPLICA_UNREACHABLE" }, `insecure gRPC to ${address}`);
      } finally {
        await client.close();
      }
    }
  });

  test("a client that does not trust the deployment's CA is refused (certificates are verified)", async () => {
    await assert.rejects(whoami(api.ready.url!, certs.otherCa), /certificate|self.signed|verify/i);
    const client = new Client({ apiServer: api.ready.grpc!, protocol: "grpc", ca: readCa(certs.otherCa), timeout: 3_000 });
    try {
      await assert.rejects(client.infer({ type: "whoami" }, { x: 1 }), { code: "REPLICA_UNREACHABLE" });
    } finally {
      await client.close();
    }
  });

  test("the gateway trusts a replica's certificate only through its CA setting", async (t) => {
    // A second API server, in this process, with the replica's endpoint registered by hand.
    const register = (url: string) =>
      fetch(`${url}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          replica_id: "by-hand",
          endpoint: replica.ready.grpc,
          http_endpoint: replica.ready.http,
          capabilities: [{ type: "whoami" }],
        }),
      });
    const untrusting = await startApiServer({ port: 0, logger: silentLogger, tlsCa: readCa(certs.otherCa) });
    const trusting = await startApiServer({ port: 0, logger: silentLogger, tlsCa: readCa(certs.ca) });
    t.after(() => Promise.all([untrusting.close(), trusting.close()]));
    for (const s of [untrusting, trusting]) assert.equal((await register(s.url)).status, 200);
    const call = (url: string) =>
      fetch(`${url}/infer`, { method: "POST", headers: { "x-capability-type": "whoami", "content-type": "application/json" }, body: BODY });
    const refused = await call(untrusting.url);
    assert.equal(refused.status, 502);
    const err = (await refused.json()) as { code: string; error: string };
    assert.equal(err.code, "REPLICA_UNREACHABLE");
    assert.match(err.error, /certificate|self.signed|verify/i);
    const ok = await call(trusting.url);
    assert.equal(ok.status, 200, await ok.clone().text());
  });
});

test("anyserve up serves TLS from the deployment file: api_server.tls_* and a service's tls, the CA handed to the replicas", async (t) => {
  const certs = makeCerts(t);
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-tls-up-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    path.join(dir, "anyserve.yaml"),
    [
      "api_server:",
      `  tls_cert: ${certs.cert}`,
      `  tls_key: ${certs.key}`,
      `  tls_ca: ${certs.ca}`,
      "services:",
      "  echo:",
      `    app: ${APP}`,
      "    monitoring: { health_check_interval: 0.5 }",
      `    tls: { cert: ${certs.cert}, key: ${certs.key} }`,
      "",
    ].join("\n"),
  );
  const up = await startCli(t, ["up", path.join(dir, "anyserve.yaml"), "--port", "0", "--grpc-port", "0"], {}, 120_000);
  assert.match(up.ready.url!, /^https:\/\//);
  const res = await whoami(up.ready.url!, certs.ca);
  assert.equal(res.status, 200, res.body);
  assert.match(res.body, /echo-0/);
  const registry = JSON.parse((await https(`${up.ready.url}/registry`, certs.ca)).body) as { replicas: { http_endpoint: string }[] };
  assert.match(registry.replicas[0]!.http_endpoint, /^https:\/\//, "the replica serves TLS and registered so");
});
