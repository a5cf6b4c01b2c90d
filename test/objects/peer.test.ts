// Reading objects from their owner when the directory is not shared: trusted peers only, the
// token, caching (write-temp-then-rename), deadlines, and cut transfers that leave nothing.
import assert from "node:assert/strict";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { withObjectEndpoint } from "../../src/objects/endpoint.js";
import { ObjRef } from "../../src/objects/ref.js";
import { registryPeers } from "../../src/objects/remote.js";
import { ObjectStore } from "../../src/objects/store.js";
import { Cleanups, waitFor } from "../helpers/processes.js";
import { rejectsWith, tempDir, temps } from "./helpers.js";

const TOKEN = "peer-token";
const hooks = new Cleanups();
let a: ObjectStore;
let aUrl: string;
let c: ObjectStore;

async function serve(listener: RequestListener): Promise<{ url: string; server: Server }> {
  const server = createServer(listener);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  hooks.after(
    () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(r);
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** A fake owner that announces `size` bytes and then misbehaves. */
/** Requests the fake owners have received. */
let ownerRequests = 0;

async function fakeOwner(behaviour: "stall" | "cut"): Promise<string> {
  const { url } = await serve((req, res) => {
    ownerRequests++;
    const meta = { id: "big", size: 1 << 20, created: Date.now(), contentType: "application/octet-stream" };
    res.writeHead(200, { "content-length": meta.size, "x-anyserve-object": JSON.stringify(meta) });
    if (behaviour === "cut") res.write(Buffer.alloc(300_000), () => res.destroy());
    else res.flushHeaders(); // then nothing
    req.on("close", () => res.destroy());
  });
  return url;
}

describe("objects across replicas without a shared directory", () => {
  before(async () => {
    a = new ObjectStore({ dir: tempDir(hooks), token: TOKEN });
    ({ url: aUrl } = await serve(withObjectEndpoint((_q, res) => res.writeHead(404).end(), { store: a })));
    a.bindReplica({ replicaId: "replica-a", url: aUrl });
    c = new ObjectStore({ dir: tempDir(hooks), token: TOKEN, peers: [aUrl], owner: { replicaId: "replica-c" } });
  });
  after(() => hooks.run());

  test("get, getJSON, getStream (with a range), stat and exists reach the owner", async () => {
    const ref = await a.create({ made: "in a" });
    assert.equal(ref.owner, "replica-a");
    assert.equal(ref.url, aUrl);
    assert.deepEqual(await c.getJSON(ref.toString()), { made: "in a" });
    const bytes = await a.create(Buffer.from("0123456789"));
    assert.deepEqual(await c.get(bytes), Buffer.from("0123456789"));
    const parts: Buffer[] = [];
    for await (const chunk of await c.getStream(bytes, { range: { start: 3, end: 6 } })) parts.push(chunk as Buffer);
    assert.equal(Buffer.concat(parts).toString(), "3456");
    const info = await c.stat(bytes);
    assert.equal(info.size, 10);
    assert.equal(info.owner, "replica-a");
    assert.equal(await c.exists(bytes), true);
    assert.deepEqual(await c.list(), [], "nothing was cached");
  });

  test("the owner's 404 and 410 arrive with their codes; a deleted object does not exist", async () => {
    const ref = await a.create("x", { ttl: 0.001 });
    await rejectsWith(c.get(ref), "OBJECT_EXPIRED");
    const gone = await a.create("y");
    await a.delete(gone);
    await rejectsWith(c.get(gone), "OBJECT_NOT_FOUND");
    assert.equal(await c.exists(gone), false);
  });

  test("cache: true keeps a local copy (same id and owner) that outlives the owner's", async () => {
    const ref = await a.create(Buffer.from("cached bytes"));
    assert.deepEqual(await c.get(ref, { cache: true }), Buffer.from("cached bytes"));
    const local = await c.list();
    assert.deepEqual(
      local.map((o) => [o.id, o.owner]),
      [[ref.id, "replica-a"]],
    );
    await a.delete(ref);
    assert.deepEqual(await c.get(ref), Buffer.from("cached bytes"));
    await c.clear();
  });

  test("a ref naming an untrusted owner is refused before any request is sent", async () => {
    let hits = 0;
    const { url: evil } = await serve((_q, res) => {
      hits++;
      res.end();
    });
    const forged = new ObjRef({ id: "x", size: 1, contentType: "application/octet-stream", owner: "evil", url: evil });
    await rejectsWith(c.get(forged), "OBJECT_REF_INVALID", /not a known peer/);
    const lonely = new ObjectStore({ dir: tempDir(hooks), token: TOKEN });
    await rejectsWith(lonely.get(await a.create("z")), "OBJECT_REF_INVALID");
    assert.equal(hits, 0, "the token never went to the forged URL");
  });

  test("with the registry resolver, the owner's URL comes from the registry, not from the ref", async () => {
    let evilHits = 0;
    const { url: evil } = await serve((_q, res) => {
      evilHits++;
      res.end();
    });
    const { url: registry } = await serve((_q, res) => {
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ replicas: [{ replica_id: "replica-a", http_endpoint: aUrl }] }));
    });
    const d = new ObjectStore({ dir: tempDir(hooks), token: TOKEN, peers: registryPeers(registry) });
    const real = await a.create("via registry");
    const misdirected = new ObjRef({ ...real.toJSON(), url: evil });
    assert.equal(await d.getJSON(misdirected), "via registry");
    await rejectsWith(d.get(new ObjRef({ ...real.toJSON(), owner: "unknown-replica" })), "OBJECT_REF_INVALID");
    assert.equal(evilHits, 0);
  });

  test("workerConfig: a worker's store, rebuilt from plain data, reads and writes like the replica's", async () => {
    const config = JSON.parse(JSON.stringify(c.workerConfig())) as ReturnType<ObjectStore["workerConfig"]>;
    assert.equal(config.token, TOKEN);
    const worker = ObjectStore.fromConfig(config);
    const mine = await worker.create("from a worker");
    assert.equal(mine.owner, "replica-c");
    assert.equal(await c.getJSON(mine), "from a worker");
    assert.equal(await worker.getJSON(await a.create("from a")), "from a", "peers travel too");
    await c.delete(mine);
  });

  test("a wrong token or an owner that is down → 502 OBJECT_OWNER_UNREACHABLE", async () => {
    const ref = await a.create("secret");
    const wrong = new ObjectStore({ dir: tempDir(hooks), token: "nope", peers: [aUrl] });
    await rejectsWith(wrong.get(ref), "OBJECT_OWNER_UNREACHABLE", /refused our token/);
    const down = new ObjRef({ ...ref.toJSON(), owner: "replica-down", url: "http://127.0.0.1:1" });
    const d = new ObjectStore({ dir: tempDir(hooks), peers: ["http://127.0.0.1:1"] });
    await rejectsWith(d.get(down), "OBJECT_OWNER_UNREACHABLE");
  });

  test("a stalled owner fails at the deadline (504) or on the caller's abort (499)", async () => {
    const url = await fakeOwner("stall");
    const d = new ObjectStore({ dir: tempDir(hooks), peers: [url] });
    const ref = new ObjRef({ id: "big", size: 1 << 20, contentType: "application/octet-stream", owner: "slow", url });
    const t0 = Date.now();
    await rejectsWith(d.get(ref, { timeoutMs: 200 }), "DEADLINE_EXCEEDED");
    const took = Date.now() - t0;
    assert.ok(took >= 190 && took < 2_000, `took ${took} ms`);
    const controller = new AbortController();
    const seen = ownerRequests;
    const fetching = d.get(ref, { signal: controller.signal });
    await waitFor("the request at the owner", () => ownerRequests > seen);
    controller.abort();
    await rejectsWith(fetching, "CANCELLED");
  });

  test("getStream: the fetch deadline bounds opening the stream, not a reader that takes longer", async () => {
    // Larger than the sockets and the reader's buffers hold, so most of it is still to come at the deadline.
    const size = 48 << 20;
    const ref = await a.create(Buffer.alloc(size, 7));
    const slow = new ObjectStore({ dir: tempDir(hooks), token: TOKEN, peers: [aUrl], fetchTimeoutMs: 300 });
    const started = Date.now();
    const it = (await slow.getStream(ref))[Symbol.asyncIterator]();
    let got = ((await it.next()).value as Buffer).length;
    // The reader pauses past the deadline before it reads on (the owner's socket fills meanwhile).
    await waitFor("the deadline to pass", () => Date.now() - started > 900, 5_000);
    for (let r = await it.next(); !r.done; r = await it.next()) got += (r.value as Buffer).length;
    assert.equal(got, size, "the whole object arrived");
  });

  test("a transfer cut halfway leaves no cached object and no temp file", async () => {
    const url = await fakeOwner("cut");
    const dir = tempDir(hooks);
    const d = new ObjectStore({ dir, peers: [url] });
    const ref = new ObjRef({ id: "big", size: 1 << 20, contentType: "application/octet-stream", owner: "flaky", url });
    await rejectsWith(d.get(ref, { cache: true }), "OBJECT_OWNER_UNREACHABLE");
    await rejectsWith(d.get(ref), "OBJECT_OWNER_UNREACHABLE");
    const stream = await d.getStream(ref);
    await new Promise((r) => stream.once("close", r)); // cut before anyone reads: no uncaught error; the reader still sees it
    await assert.rejects(
      async () => {
        for await (const _ of stream) {
          /* drain until the cut */
        }
      },
      { code: "OBJECT_OWNER_UNREACHABLE" },
    );
    assert.deepEqual(await d.list(), []);
    assert.deepEqual(temps(dir), []);
  });
});
