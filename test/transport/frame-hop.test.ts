/** The framed hop over real sockets: answers, multiplexing, streams, auth, GOAWAY. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { FrameClient } from "../../src/transport/frame-client.js";
import type { FrameRequest, FrameResponder } from "../../src/transport/frame-server.js";
import { AnyServeError } from "../../src/errors.js";
import { deferred, echo, startReplica } from "./helpers.js";

test("request → response", async () => {
  const replica = await startReplica(echo);
  const client = new FrameClient({ url: replica.url });
  try {
    const r = await client.request({ op: "hello" }, Buffer.from("ping"));
    assert.equal(r.meta.op, "hello");
    assert.equal(typeof r.meta.id, "number");
    assert.equal(r.body.toString(), "ping");
    assert.equal(client.inFlight, 0);
  } finally {
    await client.close();
    await replica.close();
  }
});

test("1000 concurrent requests answered out of order get the right bodies", async () => {
  const held: [FrameRequest, FrameResponder][] = [];
  const all = deferred();
  const replica = await startReplica((req, res) => {
    held.push([req, res]);
    if (held.length === 1000) all.resolve();
  });
  const client = new FrameClient({ url: replica.url, sockets: 2 });
  try {
    const replies = Array.from({ length: 1000 }, (_, i) => client.request({ i }, Buffer.from(`body-${i}`)));
    await all.promise;
    assert.equal(client.inFlight, 1000);
    assert.equal(replica.frames.connections, 2, "load spreads over both sockets");
    // Answer in a scrambled order: odd ones from the end first, then even ones.
    const order = [...held.keys()].sort((a, b) => (a % 2) - (b % 2) || b - a);
    for (const k of order) {
      const [req, res] = held[k]!;
      res.reply({ i: req.meta.i }, Buffer.concat([Buffer.from("re:"), req.body]));
    }
    const got = await Promise.all(replies);
    got.forEach((r, i) => {
      assert.equal(r.meta.i, i);
      assert.equal(r.body.toString(), `re:body-${i}`);
    });
  } finally {
    await client.close();
    await replica.close();
  }
});

test("bodies from 0 bytes to 32 MB arrive intact both ways", async () => {
  const replica = await startReplica(echo);
  const client = new FrameClient({ url: replica.url });
  try {
    const sizes = [0, 1, 1023, 1024, 1025, 65_535, 65_543, 1 << 20, 32 * 1024 * 1024];
    const bodies = sizes.map((n) => randomBytes(n));
    const replies = await Promise.all(bodies.map((b, i) => client.request({ i }, b)));
    replies.forEach((r, i) => {
      assert.equal(r.body.length, sizes[i]);
      assert.ok(r.body.equals(bodies[i]!), `body of ${sizes[i]} bytes intact`);
    });
  } finally {
    await client.close();
    await replica.close();
  }
});

test("streamed chunks arrive in order before END", async () => {
  const replica = await startReplica((req, res) => {
    const n = Number(req.meta.n);
    let i = 0;
    const next = (): void => {
      // Spread the stream over several turns so chunks travel in separate writes.
      for (let k = 0; k < 7 && i < n; k++, i++) res.chunk(i % 3 === 0 ? null : { i }, Buffer.from(`c${i}`));
      if (i < n) setImmediate(next);
      else res.end({ count: n });
    };
    next();
  });
  const client = new FrameClient({ url: replica.url });
  try {
    const seen: string[] = [];
    const end = await client.request({ n: 100 }, Buffer.alloc(0), {
      onChunk: (meta, body) => {
        seen.push(body.toString());
        const i = seen.length - 1;
        assert.deepEqual(meta, i % 3 === 0 ? null : { i });
      },
    });
    assert.deepEqual(end.meta, { count: 100 });
    assert.deepEqual(
      seen,
      Array.from({ length: 100 }, (_, i) => `c${i}`),
    );
  } finally {
    await client.close();
    await replica.close();
  }
});

test("a handler that throws answers { code, error }; the connection stays usable", async () => {
  const replica = await startReplica((req, res) => {
    if (req.meta.fail) throw new AnyServeError("INVALID_TENSOR", "input 'x' is bad");
    echo(req, res);
  });
  const client = new FrameClient({ url: replica.url });
  try {
    const r = await client.request({ fail: true }, Buffer.alloc(0));
    assert.deepEqual(r.meta, { code: "INVALID_TENSOR", error: "input 'x' is bad" });
    assert.equal((await client.request({}, Buffer.from("ok"))).body.toString(), "ok");
  } finally {
    await client.close();
    await replica.close();
  }
});

test("bearer token: missing and wrong are refused, right is accepted", async () => {
  const replica = await startReplica(echo, { token: "s3cret" });
  const clients = [undefined, "wrong", "s3cret-but-longer"].map(
    (token) => new FrameClient({ url: replica.url, ...(token ? { token } : {}) }),
  );
  const good = new FrameClient({ url: replica.url, token: "s3cret" });
  try {
    for (const c of clients) {
      await assert.rejects(c.request({}, Buffer.alloc(0)), (e: AnyServeError) => {
        assert.equal(e.code, "REPLICA_UNREACHABLE");
        assert.match(e.message, /HTTP 401/);
        assert.deepEqual(e.data, { responseStarted: false, sent: false, replica: replica.url, status: 401 });
        return true;
      });
    }
    assert.equal(replica.frames.connections, 0);
    assert.equal((await good.request({}, Buffer.from("in"))).body.toString(), "in");
  } finally {
    await Promise.all([...clients, good].map((c) => c.close()));
    await replica.close();
  }
});

test("other upgrade offers are ignored: the request is answered as plain HTTP/1.1", async () => {
  const replica = await startReplica(echo);
  try {
    for (const upgrade of ["websocket", "h2c"]) {
      const req = http.request(`${replica.url}/_anyserve/frames`, { headers: { Connection: "Upgrade", Upgrade: upgrade } });
      req.end();
      const [res] = (await once(req, "response")) as [http.IncomingMessage];
      let text = "";
      for await (const chunk of res) text += String(chunk);
      assert.equal(text, "plain http", upgrade);
    }
    const res = await fetch(replica.url);
    assert.equal(await res.text(), "plain http");
  } finally {
    await replica.close();
  }
});

test("GOAWAY: new requests go to a new socket while the old in-flight one completes", async () => {
  const first = deferred<FrameResponder>();
  const replica = await startReplica((req, res) => {
    if (req.meta.hold) first.resolve(res);
    else echo(req, res);
  });
  const client = new FrameClient({ url: replica.url, sockets: 1 });
  try {
    const held = client.request({ hold: true }, Buffer.from("old"));
    const oldRes = await first.promise;
    assert.equal(replica.frames.connections, 1);
    const goaway = once(client, "goaway");
    replica.frames.goAway();
    assert.deepEqual(await goaway, [1], "the client saw GOAWAY with one request in flight");
    const fresh = await client.request({}, Buffer.from("new"));
    assert.equal(fresh.body.toString(), "new");
    assert.equal(replica.frames.connections, 2, "the new request opened a second socket");
    oldRes.reply({ done: true }, Buffer.from("old-done"));
    const old = await held;
    assert.equal(old.body.toString(), "old-done");
    // The old socket, now idle, is ended by the client; the next request uses the new one.
    assert.equal((await client.request({}, Buffer.from("again"))).body.toString(), "again");
  } finally {
    await client.close();
    await replica.close();
  }
});

test("goAway({ refuseNew }) makes new connections fail with SHUTTING_DOWN", async () => {
  const replica = await startReplica(echo);
  const client = new FrameClient({ url: replica.url });
  try {
    replica.frames.goAway({ refuseNew: true });
    await assert.rejects(
      client.request({}, Buffer.alloc(0)),
      (e: AnyServeError) => e.code === "SHUTTING_DOWN" && e.data?.responseStarted === false && e.data?.status === 503,
    );
  } finally {
    await client.close();
    await replica.close();
  }
});

test("errors are rejected promises, never synchronous throws", async () => {
  const replica = await startReplica(echo);
  const client = new FrameClient({ url: replica.url });
  try {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const p = client.request(circular, Buffer.alloc(0));
    await assert.rejects(p, (e: AnyServeError) => e.code === "INTERNAL");
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(client.request({}, Buffer.alloc(0), { signal: ac.signal }), (e: AnyServeError) => e.code === "CANCELLED");
    const small = new FrameClient({ url: replica.url, maxFrameBytes: 1000 });
    await assert.rejects(small.request({}, Buffer.alloc(2000)), (e: AnyServeError) => e.code === "PAYLOAD_TOO_LARGE");
    await small.close();
    await assert.rejects(small.request({}, Buffer.alloc(0)), (e: AnyServeError) => e.code === "INTERNAL" && /closed/.test(e.message));
  } finally {
    await client.close();
    await replica.close();
  }
});

test("an answer the replica cannot send (too big, unencodable meta) becomes an INTERNAL error answer", async () => {
  const replica = await startReplica(
    (req, res) => {
      if (req.meta.big) res.reply({}, Buffer.alloc(2 << 20));
      else if (req.meta.stream) {
        res.chunk(null, Buffer.from("a"));
        res.chunk({ n: 10n }, Buffer.alloc(0));
        res.chunk(null, Buffer.from("never"));
      } else echo(req, res);
    },
    { maxFrameBytes: 1 << 20 },
  );
  const client = new FrameClient({ url: replica.url });
  try {
    const big = await client.request({ big: true }, Buffer.alloc(0));
    assert.equal(big.meta.code, "INTERNAL");
    assert.match(String(big.meta.error), /exceeds the maximum frame size of 1048576 bytes/);
    const chunks: string[] = [];
    const end = await client.request({ stream: true }, Buffer.alloc(0), { onChunk: (_m, b) => void chunks.push(b.toString()) });
    assert.deepEqual(chunks, ["a"]);
    assert.equal(end.meta.code, "INTERNAL");
    assert.match(String(end.meta.error), /cannot be encoded/);
    assert.equal((await client.request({}, Buffer.from("still fine"))).body.toString(), "still fine");
  } finally {
    await client.close();
    await replica.close();
  }
});

test("backpressure: a big queued write reports congested, then 'drain'", async () => {
  const replica = await startReplica(echo);
  const client = new FrameClient({ url: replica.url, sockets: 1 });
  try {
    await client.request({}, Buffer.alloc(0)); // open the socket
    assert.equal(client.congested, false);
    const reply = client.request({}, Buffer.alloc(8 << 20, 1));
    assert.equal(client.congested, true, "8 MiB queued in the socket");
    await once(client, "drain");
    assert.equal((await reply).body.length, 8 << 20);
  } finally {
    await client.close();
    await replica.close();
  }
});
