/** The framed hop when things go wrong: limits, deadlines, cancels, dead sockets, dead replicas. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { FrameClient } from "../../src/transport/frame-client.js";
import { FrameDecoder, FrameType, encodeFrame } from "../../src/transport/frames.js";
import type { FrameRequest } from "../../src/transport/frame-server.js";
import { AnyServeError } from "../../src/errors.js";
import { deadPort, deferred, echo, startReplica } from "./helpers.js";
import { toAbortSignal } from "../../src/util/cancel.js";

const isErr =
  (code: string, extra?: (e: AnyServeError) => void) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof AnyServeError, `expected an AnyServeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    extra?.(e);
    return true;
  };

test("a request frame over the replica's maximum closes the connection with a clear error", async () => {
  const replica = await startReplica(echo, { maxFrameBytes: 1 << 20 });
  const client = new FrameClient({ url: replica.url });
  try {
    await assert.rejects(
      client.request({}, Buffer.alloc(2 << 20)),
      isErr("PAYLOAD_TOO_LARGE", (e) => {
        assert.match(e.message, /exceeds the maximum frame size of 1048576 bytes/);
        assert.match(e.message, new RegExp(`replica ${replica.url}`));
      }),
    );
    // The next request reconnects.
    assert.equal((await client.request({}, Buffer.from("small"))).body.toString(), "small");
  } finally {
    await client.close();
    await replica.close();
  }
});

test("a reply frame over the client's maximum closes the connection with UPSTREAM_PROTOCOL_ERROR", async () => {
  const replica = await startReplica((req, res) => res.reply({}, Buffer.alloc(Number(req.meta.n))));
  const client = new FrameClient({ url: replica.url, maxFrameBytes: 64 * 1024 });
  try {
    await assert.rejects(
      client.request({ n: 100_000 }, Buffer.alloc(0)),
      isErr("UPSTREAM_PROTOCOL_ERROR", (e) => {
        assert.match(e.message, /sent a bad frame: frame of 100012 bytes exceeds the maximum frame size of 65536 bytes/);
        assert.equal(typeof e.data?.responseStarted, "boolean");
      }),
    );
    assert.equal((await client.request({ n: 10 }, Buffer.alloc(0))).body.length, 10);
  } finally {
    await client.close();
    await replica.close();
  }
});

/** A replica whose handler hands out each request, to be answered (or not) by the test. */
async function holdingReplica(): Promise<{ replica: Awaited<ReturnType<typeof startReplica>>; next: () => Promise<FrameRequest> }> {
  const queue: FrameRequest[] = [];
  let waiter: ((r: FrameRequest) => void) | undefined;
  const replica = await startReplica((req, res) => {
    if (req.meta.warm) return res.reply({}, Buffer.alloc(0));
    if (waiter) {
      waiter(req);
      waiter = undefined;
    } else queue.push(req);
  });
  const next = (): Promise<FrameRequest> =>
    queue.length > 0
      ? Promise.resolve(queue.shift()!)
      : new Promise((r) => {
          waiter = r;
        });
  return { replica, next };
}

test("timeout → DEADLINE_EXCEEDED, and the replica's signal fires", async () => {
  const { replica, next } = await holdingReplica();
  const client = new FrameClient({ url: replica.url, sockets: 1 });
  try {
    // Connect first: a deadline that passes while connecting never reaches the replica.
    await client.request({ warm: true }, Buffer.alloc(0));
    const p = client.request({}, Buffer.alloc(0), { timeoutMs: 50 });
    const req = await next();
    await assert.rejects(p, isErr("DEADLINE_EXCEEDED"));
    if (!req.signal.aborted) await once(toAbortSignal(req.signal), "abort");
    assert.equal((req.signal.reason as AnyServeError).code, "DEADLINE_EXCEEDED");
    assert.equal(client.inFlight, 0);
  } finally {
    await client.close();
    await replica.close();
  }
});

test("abort → CANCELLED, and the replica's signal fires", async () => {
  const { replica, next } = await holdingReplica();
  const client = new FrameClient({ url: replica.url });
  try {
    const ac = new AbortController();
    const p = client.request({}, Buffer.alloc(0), { signal: ac.signal });
    const req = await next();
    ac.abort();
    await assert.rejects(p, isErr("CANCELLED"));
    if (!req.signal.aborted) await once(toAbortSignal(req.signal), "abort");
    assert.equal((req.signal.reason as AnyServeError).code, "CANCELLED");
  } finally {
    await client.close();
    await replica.close();
  }
});

test("connection destroyed before any answer → REPLICA_UNREACHABLE, responseStarted false; next request reconnects", async () => {
  const { replica, next } = await holdingReplica();
  const client = new FrameClient({ url: replica.url });
  try {
    const p = client.request({}, Buffer.alloc(0));
    const req = await next();
    replica.frames.close(); // destroys the replica's frame sockets
    await assert.rejects(
      p,
      isErr("REPLICA_UNREACHABLE", (e) => {
        assert.equal(e.data?.responseStarted, false);
        assert.match(e.message, new RegExp(`replica ${replica.url} closed the frame connection before any byte`));
      }),
    );
    assert.equal(req.signal.aborted, true, "the replica's in-flight request was aborted");
    replica.reattach(echo);
    assert.equal((await client.request({}, Buffer.from("back"))).body.toString(), "back");
  } finally {
    await client.close();
    await replica.close();
  }
});

test("connection destroyed mid-stream → REPLICA_UNREACHABLE, responseStarted true", async () => {
  const replica = await startReplica((_req, res) => res.chunk({ n: 0 }, Buffer.from("first")));
  const client = new FrameClient({ url: replica.url });
  try {
    const firstChunk = deferred();
    const p = client.request({}, Buffer.alloc(0), { onChunk: () => firstChunk.resolve() });
    await firstChunk.promise;
    replica.frames.close();
    await assert.rejects(
      p,
      isErr("REPLICA_UNREACHABLE", (e) => assert.equal(e.data?.responseStarted, true)),
    );
  } finally {
    await client.close();
    await replica.close();
  }
});

test("a replica process dying halfway through a reply frame → responseStarted true", async () => {
  // A fake replica: upgrades, then writes the first 30 bytes of a RESPONSE frame and dies.
  const server = http.createServer();
  server.on("upgrade", (_req, socket: net.Socket) => {
    socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: anyserve-frames\r\nConnection: Upgrade\r\n\r\n");
    const dec = new FrameDecoder((type, id) => {
      if (type !== FrameType.REQUEST) return;
      const [frame] = encodeFrame(FrameType.RESPONSE, id, { ok: true }, Buffer.alloc(500));
      socket.write(frame!.subarray(0, 30), () => socket.destroy());
    });
    socket.on("data", (c: Buffer) => dec.push(c));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new FrameClient({ url });
  try {
    await assert.rejects(
      client.request({}, Buffer.alloc(0)),
      isErr("REPLICA_UNREACHABLE", (e) => {
        assert.equal(e.data?.responseStarted, true);
        assert.match(e.message, /after part of the answer had arrived/);
      }),
    );
  } finally {
    await client.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test("connect refused → REPLICA_UNREACHABLE for every waiting request", async () => {
  const port = await deadPort();
  const client = new FrameClient({ url: `http://127.0.0.1:${port}` });
  try {
    const results = await Promise.allSettled([client.request({}, Buffer.alloc(0)), client.request({}, Buffer.alloc(1))]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      isErr("REPLICA_UNREACHABLE", (e) => {
        assert.deepEqual(e.data, { responseStarted: false, sent: false, replica: `http://127.0.0.1:${port}` });
        assert.match(e.message, /ECONNREFUSED/);
      })((r as PromiseRejectedResult).reason);
    }
    assert.equal(client.inFlight, 0);
  } finally {
    await client.close();
  }
});

test("connect timeout → REPLICA_UNREACHABLE", async () => {
  // Accepts TCP connections but never answers the upgrade.
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new FrameClient({ url, connectTimeoutMs: 100 });
  try {
    // A request whose own deadline passes while connecting fails with DEADLINE_EXCEEDED.
    await Promise.all([
      assert.rejects(client.request({}, Buffer.alloc(0), { timeoutMs: 10 }), isErr("DEADLINE_EXCEEDED")),
      assert.rejects(
        client.request({}, Buffer.alloc(0)),
        isErr("REPLICA_UNREACHABLE", (e) => {
          assert.match(e.message, /no connection within 100 ms/);
        }),
      ),
    ]);
    assert.equal(client.inFlight, 0);
  } finally {
    await client.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test("close() fails what is in flight with CANCELLED and aborts it at the replica", async () => {
  const { replica, next } = await holdingReplica();
  const client = new FrameClient({ url: replica.url });
  try {
    const p = client.request({}, Buffer.alloc(0));
    const rejected = assert.rejects(p, isErr("CANCELLED"));
    const req = await next();
    await client.close();
    await rejected;
    if (!req.signal.aborted) await once(toAbortSignal(req.signal), "abort");
  } finally {
    await replica.close();
  }
});
