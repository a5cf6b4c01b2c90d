// A worker process's object reads through its replica (FETCH op range and stream), both ends in one
// process: the worker's store with its ReplicaObjects, and the replica's serveWorkerRequest with its
// own store, which reads from a real owner (an object endpoint on a real socket). A loopback stands
// in for the Unix socket, so that what each side holds — open streams, relays, what is in flight
// between them — can be counted. The real processes are exercised by test/objects/workers.test.ts.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import type { ExecutionOptions } from "../../src/execution/base.js";
import type { WorkerHandle } from "../../src/execution/handle.js";
import { ReplicaObjects } from "../../src/execution/replica-objects.js";
import { openRelays, serveWorkerRequest } from "../../src/execution/worker-requests.js";
import { Msg, WORKER_STREAM_WINDOW_BYTES, type Meta } from "../../src/execution/worker-protocol.js";
import { objectEndpoint } from "../../src/objects/endpoint.js";
import type { ObjRef } from "../../src/objects/ref.js";
import { ObjectStore } from "../../src/objects/store.js";
import { chunkCost } from "../../src/transport/frames.js";
import { rejectsWith, tempDir } from "../objects/helpers.js";
import { waitFor } from "../helpers/processes.js";

const SIZE = 3 * 1024 * 1024 + 17; // 12 windows and an odd tail
const bytesOf = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 11)) & 0xff));
const OBJECT = bytesOf(SIZE);

let owner: ObjectStore;
let server: Server;
let ownerUrl: string;
/** The Range headers the owner was asked for (undefined: the whole object). */
const asked: (string | undefined)[] = [];
let big: ObjRef;
let empty: ObjRef;

const dirs: (() => void)[] = [];
before(async () => {
  const t = { after: (fn: () => unknown) => void dirs.push(() => void fn()) };
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  ownerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  owner = new ObjectStore({ dir: tempDir(t), owner: { replicaId: "owner", url: ownerUrl } });
  const handle = objectEndpoint({ store: owner });
  server.on("request", (req, res) => {
    if (req.method === "GET") asked.push(req.headers.range);
    if (!handle(req, res)) res.writeHead(404).end();
  });
  big = await owner.create(OBJECT);
  empty = await owner.create(Buffer.alloc(0));
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  for (const d of dirs) d();
});

/** The worker's store and the replica, joined by a loopback; counts what is in flight on the stream FETCHes. */
function pair(t: { after(fn: () => unknown): void }) {
  const ended = new AbortController();
  const replicaStore = new ObjectStore({ dir: tempDir(t), owner: { replicaId: "replica" }, peers: [ownerUrl] });
  const o = { env: { objects: replicaStore } } as unknown as ExecutionOptions;
  let remote: ReplicaObjects;
  /** Bytes (chunkCost) sent by the replica minus bytes credited back by the worker, and the most ever. */
  const flight = { now: 0, max: 0, chunks: 0 };
  const handle: WorkerHandle = {
    name: "loopback",
    transfersBodies: false,
    send: (type: number, id: number, meta: Meta, body?: Buffer) => {
      const b = body ?? Buffer.alloc(0);
      if (type === Msg.FETCH_CHUNK) {
        flight.now += chunkCost(b);
        flight.max = Math.max(flight.max, flight.now);
        flight.chunks++;
      }
      setImmediate(() => {
        if (type === Msg.FETCHED) remote.answer(id, meta, b);
        else if (type === Msg.FETCH_CHUNK || type === Msg.FETCH_END) remote.streamed(type, id, meta, b);
      });
    },
    terminate: () => ended.abort(),
    onMessage: () => undefined,
    onExit: () => undefined,
    ended: ended.signal,
  };
  remote = new ReplicaObjects({
    send: (type, id, meta, body) => {
      if (type === Msg.FETCH_CREDIT) flight.now -= Number(meta?.n);
      setImmediate(() => serveWorkerRequest(o, handle, type, id, meta, body, undefined));
    },
    job: () => 7,
  });
  const store = new ObjectStore({ dir: tempDir(t), owner: { replicaId: "worker" }, remote });
  const clean = () => waitFor("nothing held on either side", () => remote.openStreams === 0 && openRelays(handle) === 0);
  return { store, remote, handle, flight, clean };
}

test("a range read returns exactly its bytes, and only they are asked of the owner", async (t) => {
  const p = pair(t);
  asked.length = 0;
  for (const [start, end] of [
    [0, 0],
    [100, 199],
    [SIZE - 5, SIZE - 1],
    [1_000_000, 2_500_000],
  ] as const) {
    const got = await p.store.get(big, { range: { start, end } });
    assert.ok(got.equals(OBJECT.subarray(start, end + 1)), `range ${start}-${end}`);
  }
  assert.deepEqual(asked, ["bytes=0-0", "bytes=100-199", `bytes=${SIZE - 5}-${SIZE - 1}`, "bytes=1000000-2500000"]);
  await p.clean();
});

test("bad ranges get the error local range reads get: OBJECT_RANGE_INVALID naming offset, length and size", async (t) => {
  const p = pair(t);
  const local = new ObjectStore({ dir: tempDir(t) });
  const here = await local.create(OBJECT);
  for (const range of [
    { start: SIZE, end: SIZE },
    { start: 10, end: 5 },
    { start: -1, end: 3 },
    { start: 0, end: SIZE },
  ]) {
    const want = (await rejectsWith(local.get(here, { range }), "OBJECT_RANGE_INVALID")).message.replace(here.id, "ID");
    const remote = await rejectsWith(p.store.get(big, { range }), "OBJECT_RANGE_INVALID");
    assert.equal(remote.message.replace(big.id, "ID"), want, "the same message as a local range read");
    assert.match(
      remote.message,
      new RegExp(`offset ${range.start}, length ${range.end - range.start + 1}\\) is outside object .* \\(${SIZE} bytes\\)`),
    );
    await rejectsWith(p.store.getStream(big, { range }), "OBJECT_RANGE_INVALID");
  }
  await p.clean();
});

test("a stream of an object much larger than the window arrives whole and in order; a whole read too", async (t) => {
  const p = pair(t);
  const chunks: Buffer[] = [];
  for await (const c of await p.store.getStream(big)) chunks.push(c as Buffer);
  assert.ok(Buffer.concat(chunks).equals(OBJECT));
  assert.ok(p.flight.chunks > SIZE / WORKER_STREAM_WINDOW_BYTES, `${p.flight.chunks} chunks`);
  assert.ok((await p.store.get(big)).equals(OBJECT));
  const ranged = Buffer.concat(await (await p.store.getStream(big, { range: { start: 5, end: 1_000_004 } })).toArray());
  assert.ok(ranged.equals(OBJECT.subarray(5, 1_000_005)));
  assert.equal((await p.store.get(empty)).length, 0);
  assert.equal((await (await p.store.getStream(empty)).toArray()).length, 0);
  await p.clean();
});

test("a reader that stops holds at most a window in flight; destroying the stream stops the replica's read", async (t) => {
  const p = pair(t);
  const s = await p.store.getStream(big);
  const first = await new Promise<Buffer>((resolve) =>
    s.once("data", (c: Buffer) => {
      s.pause();
      resolve(c);
    }),
  );
  assert.ok(first.equals(OBJECT.subarray(0, first.length)));
  let last = -1;
  await waitFor(
    "the replica to stop sending",
    () => {
      const same = p.flight.chunks === last;
      last = p.flight.chunks;
      return same;
    },
    10_000,
    50,
  );
  assert.ok(p.flight.max <= WORKER_STREAM_WINDOW_BYTES, `in flight at most ${p.flight.max} bytes, window ${WORKER_STREAM_WINDOW_BYTES}`);
  const queued = (s as unknown as { queuedBytes: number }).queuedBytes;
  assert.ok(queued > 0 && queued <= WORKER_STREAM_WINDOW_BYTES, `${queued} bytes queued in the worker`);
  assert.ok(p.flight.chunks * 64 * 1024 < SIZE / 2, `${p.flight.chunks} chunks sent of a ${SIZE}-byte object`);
  assert.equal(openRelays(p.handle), 1);
  s.destroy();
  await p.clean();
});

test("the read's abort, the job's end and the worker's end each stop the replica's read", async (t) => {
  const ways: [string, (p: ReturnType<typeof pair>, abort: AbortController) => void][] = [
    ["abort", (_p, abort) => abort.abort(new Error("handler gave up"))],
    ["job end", (p) => p.remote.jobEnded(7)],
    ["worker end", (p) => p.handle.terminate()],
  ];
  for (const [what, end] of ways) {
    const p = pair(t);
    const abort = new AbortController();
    const s = await p.store.getStream(big, { signal: abort.signal });
    s.pause();
    await waitFor(`${what}: the stream to start`, () => p.flight.chunks > 0);
    end(p, abort);
    if (what === "worker end") {
      await waitFor(`${what}: the relay to stop`, () => openRelays(p.handle) === 0);
      p.remote.jobEnded(7);
    } else {
      await assert.rejects(s.toArray(), { code: "CANCELLED" }, what);
    }
    await p.clean();
  }
});

test("a stream FETCH whose id is still open is refused with an end naming the id; the open one goes on", async (t) => {
  const p = pair(t);
  const ended: { id: number; meta: Meta }[] = [];
  const chunks: Buffer[] = [];
  const send = p.handle.send.bind(p.handle);
  const handle: WorkerHandle = {
    ...p.handle,
    send: (type, id, meta, body) => {
      if (id !== 9999) return send(type, id, meta, body);
      if (type === Msg.FETCH_CHUNK) chunks.push(body!);
      if (type === Msg.FETCH_END) ended.push({ id, meta });
    },
  };
  const replicaStore = new ObjectStore({ dir: tempDir(t), owner: { replicaId: "replica" }, peers: [ownerUrl] });
  const o = { env: { objects: replicaStore } } as unknown as ExecutionOptions;
  const ask = { ref: big.toString(), op: "stream", w: WORKER_STREAM_WINDOW_BYTES };
  serveWorkerRequest(o, handle, Msg.FETCH, 9999, ask, Buffer.alloc(0), undefined);
  await waitFor("the first stream to start", () => chunks.length > 0);
  serveWorkerRequest(o, handle, Msg.FETCH, 9999, ask, Buffer.alloc(0), undefined);
  await waitFor("the refusal", () => ended.length > 0);
  assert.equal(ended[0]!.meta?.code, "INTERNAL");
  assert.match(String(ended[0]!.meta?.error), /stream FETCH id 9999 is still open on worker loopback/);
  // Now the worker reads the open stream: its chunks are credited back as they come.
  let credited = 1;
  await waitFor(
    "the open stream to end",
    () => {
      for (; credited < chunks.length; credited++) {
        serveWorkerRequest(o, handle, Msg.FETCH_CREDIT, 9999, { n: chunkCost(chunks[credited]!) }, Buffer.alloc(0), undefined);
      }
      return ended.length === 2;
    },
    20_000,
  );
  assert.deepEqual(ended[1]!.meta, {});
  assert.ok(Buffer.concat(chunks).equals(OBJECT), "the open stream arrived whole");
  assert.equal(openRelays(handle), 0);
});
