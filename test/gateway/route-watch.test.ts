// GET /routes/watch and a watcher that stops reading: every event is the whole table, so while the
// watcher's socket is full nothing more is queued for it, and when it reads again it gets the
// table as it is then — not every table in between (an API server on a real socket, in this
// process, with registrations made in its registry: the test needs the table big and changing fast).
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { test } from "node:test";
import { waitFor } from "../helpers/processes.js";
import { apiServer } from "../sdk/helpers.js";

/** Replicas in the table and capabilities each: ~200 KB per event, so the socket buffers fill after a few. */
const REPLICAS = 60;
const CAPABILITIES = 30;
/** Changes made while the watcher does not read. */
const CHANGES = 120;

test("a watcher that stops reading gets the latest table when it reads again, not every one in between", async (t) => {
  const s = await apiServer(t);
  for (let i = 0; i < REPLICAS; i++) {
    s.registry.register({
      replicaId: `w${i}`,
      endpoint: `127.0.0.1:${1 + i}`,
      heartbeatIntervalMs: 600_000,
      capabilities: Array.from({ length: CAPABILITIES }, (_, k) => ({
        capability: { type: "watch", model: `model-with-a-long-name-${i}-${k}`, variant: "x".repeat(40) },
        state: "warm" as const,
      })),
    });
  }
  const url = new URL(s.url);
  const socket: Socket = connect(Number(url.port), "127.0.0.1");
  t.after(() => socket.destroy());
  let text = "";
  const onData = (c: Buffer): void => {
    text += c.toString("latin1");
  };
  socket.on("data", onData);
  socket.write(`GET /routes/watch HTTP/1.1\r\nHost: t\r\n\r\n`);
  await waitFor("the first table", () => text.includes("\n\n", text.indexOf("data: ")));
  socket.pause();
  // Changes, each in its own turn (the table publishes the changes of one turn once).
  for (let k = 0; k < CHANGES; k++) {
    // Replicas drained one after another, then put back: every call is a change.
    s.registry.drain(`w${k % REPLICAS}`, Math.floor(k / REPLICAS) % 2 === 0);
    await new Promise((r) => setImmediate(r));
  }
  const latest = ((await (await fetch(`${s.url}/routes`)).json()) as { version: number }).version;
  text = "";
  socket.resume();
  const versions = (): number[] => [...text.matchAll(/data: \{"version":(\d+)/g)].map((m) => Number(m[1]));
  await waitFor("the latest table", () => versions().includes(latest), 20_000);
  const got = versions();
  t.diagnostic(`${got.length} tables (${(text.length / 1e6).toFixed(1)} MB) for ${CHANGES} changes`);
  assert.ok(
    got.length < CHANGES / 2,
    `the watcher received ${got.length} tables for ${CHANGES} changes made while it did not read: they were all queued for it`,
  );
  assert.equal(got.at(-1), latest);
});
