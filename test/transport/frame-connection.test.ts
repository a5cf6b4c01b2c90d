// The write side of a frame connection: every frame of one event-loop turn leaves in order, small
// parts joined and big bodies uncopied, and arrives intact over a real socket.
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import { FrameConnection } from "../../src/transport/frame-connection.js";
import { FrameDecoder, FrameType } from "../../src/transport/frames.js";

test("one turn of small, big and small frames arrives in order with every byte intact", async (t) => {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => server.close());
  const accepted = once(server, "connection");
  const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  const [peer] = (await accepted) as [net.Socket];
  t.after(() => {
    client.destroy();
    peer.destroy();
  });

  const got: { id: number; meta: unknown; body: Buffer }[] = [];
  const all = new Promise<void>((resolve) => {
    const decoder = new FrameDecoder((_type, id, meta, body) => {
      got.push({ id, meta, body: Buffer.from(body) });
      if (got.length === 4) resolve();
    });
    peer.on("data", (chunk: Buffer) => decoder.push(chunk));
  });
  const conn = new FrameConnection(client, { onFrame: () => undefined, onClose: () => undefined });
  const big = Buffer.alloc(200 * 1024, 7);
  const medium = Buffer.alloc(3 * 1024, 3);
  conn.send(FrameType.REQUEST, 1, { n: 1 }, Buffer.from("small"));
  conn.send(FrameType.REQUEST, 2, { n: 2 }, big);
  conn.send(FrameType.REQUEST, 3, null, medium);
  conn.send(FrameType.REQUEST, 4, { n: 4 });
  await all;
  assert.deepEqual(
    got.map((f) => f.id),
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    got.map((f) => f.meta),
    [{ n: 1 }, { n: 2 }, null, { n: 4 }],
  );
  assert.equal(got[0]!.body.toString(), "small");
  assert.ok(got[1]!.body.equals(big), "the big body arrives intact");
  assert.ok(got[2]!.body.equals(medium));
  assert.equal(got[3]!.body.length, 0);
});
