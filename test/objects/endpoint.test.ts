// The object endpoint (GET/HEAD /objects/{id}): bearer token, metadata header, Range (206/416),
// 404/410, 405 — answered by an in-process server around a store.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, mock, test } from "node:test";
import { parseRange, withObjectEndpoint } from "../../src/objects/endpoint.js";
import { ObjectStore } from "../../src/objects/store.js";
import { Cleanups } from "../helpers/processes.js";
import { tempDir } from "./helpers.js";

const TOKEN = "s3cret-token";
const hooks = new Cleanups();
const BYTES = Buffer.from("0123456789abcdefghij");
let store: ObjectStore;
let server: Server;
let base: string;
let id: string;

const auth = { authorization: `Bearer ${TOKEN}` };

describe("object endpoint", () => {
  before(async () => {
    store = new ObjectStore({ dir: tempDir(hooks), token: TOKEN, owner: { replicaId: "replica-a", url: "http://127.0.0.1:9" } });
    id = (await store.create(BYTES)).id;
    server = createServer(withObjectEndpoint((_q, res) => res.writeHead(418).end(), { store }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    hooks.after(() => new Promise((r) => server.close(r)));
  });
  after(() => hooks.run());

  test("GET streams the bytes with type, length, ranges and metadata headers", async () => {
    const res = await fetch(`${base}/objects/${id}`, { headers: auth });
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), BYTES);
    assert.equal(res.headers.get("content-type"), "application/octet-stream");
    assert.equal(res.headers.get("content-length"), "20");
    assert.equal(res.headers.get("accept-ranges"), "bytes");
    const meta = JSON.parse(res.headers.get("x-anyserve-object")!) as Record<string, unknown>;
    assert.equal(meta.id, id);
    assert.equal(meta.size, 20);
    assert.equal(meta.owner, "replica-a");
  });

  test("HEAD answers the headers only", async () => {
    const res = await fetch(`${base}/objects/${id}`, { method: "HEAD", headers: auth });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), "20");
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  test("no token, a wrong token or another scheme → 401 with WWW-Authenticate; other paths pass through", async () => {
    for (const headers of [
      {},
      { authorization: "Bearer wrong" },
      { authorization: `Basic ${TOKEN}` },
      { authorization: `Bearer ${TOKEN}x` },
    ] as Record<string, string>[]) {
      const res = await fetch(`${base}/objects/${id}`, { headers });
      assert.equal(res.status, 401);
      assert.match(res.headers.get("www-authenticate")!, /^Bearer/);
      assert.equal(((await res.json()) as { code: string }).code, "UNAUTHENTICATED");
    }
    assert.equal((await fetch(`${base}/objectsX`)).status, 418);
    assert.equal((await fetch(`${base}/v2/health/live`)).status, 418);
  });

  test("Range: bytes=a-b, a-, -n → 206 with Content-Range", async () => {
    const cases: [string, string, string][] = [
      ["bytes=0-3", "0123", "bytes 0-3/20"],
      ["bytes=18-", "ij", "bytes 18-19/20"],
      ["bytes=-2", "ij", "bytes 18-19/20"],
      ["bytes=15-99", "fghij", "bytes 15-19/20"],
      ["bytes=-50", BYTES.toString(), "bytes 0-19/20"],
    ];
    for (const [range, body, contentRange] of cases) {
      const res = await fetch(`${base}/objects/${id}`, { headers: { ...auth, range } });
      assert.equal(res.status, 206, range);
      assert.equal(await res.text(), body, range);
      assert.equal(res.headers.get("content-range"), contentRange, range);
    }
  });

  test("an invalid Range → 416 OBJECT_RANGE_INVALID with Content-Range: bytes */size", async () => {
    for (const range of ["bytes=20-", "bytes=5-2", "bytes=0-1,4-5", "items=0-1", "bytes=-0", "bytes=-", "bytes=x-y", "bytes=1.5-2"]) {
      const res = await fetch(`${base}/objects/${id}`, { headers: { ...auth, range } });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers.get("content-range"), "bytes */20", range);
      assert.equal(((await res.json()) as { code: string }).code, "OBJECT_RANGE_INVALID");
    }
    assert.throws(() => parseRange("bytes=0-0", 0), { code: "OBJECT_RANGE_INVALID" });
  });

  test("missing → 404; expired → 410; POST → 405 with Allow", async (t) => {
    const missing = await fetch(`${base}/objects/nope`, { headers: auth });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, "OBJECT_NOT_FOUND");
    const post = await fetch(`${base}/objects/${id}`, { method: "POST", headers: auth, body: "x" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    const short = await store.create("soon gone", { ttl: 5 });
    mock.timers.enable({ apis: ["Date"], now: Date.now() + 6_000 });
    t.after(() => mock.timers.reset());
    const gone = await fetch(`${base}/objects/${short.id}`, { headers: auth });
    assert.equal(gone.status, 410);
    assert.equal(((await gone.json()) as { code: string }).code, "OBJECT_EXPIRED");
  });
});
