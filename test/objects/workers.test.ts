// ctx.objects works in worker threads (pool) and child processes (process), on the replica's store.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { Client } from "../../src/sdk/client.js";
import { Cleanups, FIXTURES, registryIds, startCli, startReplicaProc, waitFor } from "../helpers/processes.js";

for (const strategy of ["pool", "process"] as const) {
  test(`ctx.objects inside ${strategy} workers creates and reads objects in the replica's store`, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), "anyserve-objw-"));
    const replica = await startCli(t, [
      "start",
      "--app",
      path.join(FIXTURES, "objects_worker_app.ts:app"),
      "--port",
      "0",
      "--threading-strategy",
      strategy,
      "--thread-count",
      "1",
      "--object-store",
      dir,
    ]);
    const client = new Client({ endpoint: replica.ready.http! });
    t.after(() => client.close());
    const res = (await client.infer({ type: "obj_roundtrip" }, { text: "from a worker" })) as {
      text: string;
      ref: string;
      thread: number;
      pid: number;
    };
    assert.equal(res.text, "from a worker");
    assert.match(res.ref, /^obj:/);
    if (strategy === "pool") assert.ok(res.thread > 0, "ran in a worker thread");
    else assert.notEqual(res.pid, replica.child.pid, "ran in a child process");
  });
}

// A worker process holds no secret of its replica's (process-handle.ts), so under a control-plane
// token (the default under `up`) it can neither look an owner up in the registry nor show the peer
// key to the owner's object endpoint: objects owned by another replica are read through its replica
// (FETCH), as Python workers do. Worker threads share the replica's process and its credentials.
for (const strategy of ["process", "pool"] as const) {
  test(`under a control-plane token, ctx.objects in a ${strategy} worker reads an object another replica owns: get, stat, a stream, a range`, async (t) => {
    const token = "control-token-for-objects-test";
    const hooks = new Cleanups();
    t.after(() => hooks.run());
    const api = await startCli(hooks, ["api-server", "--port", "0", "--token", token]);
    const replica = (service: string, extra: string[] = []) =>
      startReplicaProc(hooks, api.ready.url!, path.join(FIXTURES, "multihost_app.ts:app"), [
        "--service",
        service,
        "--token",
        token,
        "--object-store",
        mkdtempSync(path.join(tmpdir(), `anyserve-objw-${service}-`)),
        ...extra,
      ]);
    await replica("host_b");
    await replica("host_a", ["--threading-strategy", strategy, "--thread-count", "1"]);
    await waitFor("both replicas registered", async () => (await registryIds(api.ready.url!, token)).length === 2);
    const client = new Client({ apiServer: api.ready.url!, direct: false });
    t.after(() => client.close());
    const text = "owned by b ".repeat(1000);
    const ref = String(await client.infer({ type: "obj_put", host: "b" }, { text }));
    const read = (await client.infer({ type: "obj_read", host: "a" }, { ref })) as Record<string, unknown>;
    assert.deepEqual(read, {
      value: text,
      size: Buffer.byteLength(JSON.stringify(text)),
      streamed: JSON.stringify(text),
      range: JSON.stringify(text).slice(2, 12),
      missing: "OBJECT_NOT_FOUND",
      inWorker: true,
    });
  });
}

// Parts of a large object another replica owns, from worker processes holding no token: a Node
// `process` worker and a Python worker. The replica reads for them (FETCH op range: only the
// range crosses; op stream: FETCH_CHUNKs within a window the handler's reading reopens).
test("under a control-plane token, Node and Python worker processes read ranges and streams of an object another replica owns; a reader that stops holds about a window", async (t) => {
  const token = "control-token-for-object-parts-test";
  const hooks = new Cleanups();
  t.after(() => hooks.run());
  const api = await startCli(hooks, ["api-server", "--port", "0", "--token", token]);
  const store = (name: string) => ["--object-store", mkdtempSync(path.join(tmpdir(), `anyserve-objp-${name}-`))];
  const multihost = path.join(FIXTURES, "multihost_app.ts:app");
  await Promise.all([
    startReplicaProc(hooks, api.ready.url!, multihost, ["--service", "host_b", "--token", token, ...store("b")]),
    startReplicaProc(hooks, api.ready.url!, multihost, [
      ...["--service", "host_a", "--token", token, "--threading-strategy", "process", "--thread-count", "1"],
      ...store("a"),
    ]),
    startReplicaProc(hooks, api.ready.url!, `${path.join(FIXTURES, "python", "objects_reader.py")}:app`, [
      "--token",
      token,
      ...store("py"),
    ]),
  ]);
  await waitFor("the replicas registered", async () => (await registryIds(api.ready.url!, token)).length === 3);
  const client = new Client({ apiServer: api.ready.url!, direct: false });
  t.after(() => client.close());
  const size = 4 * 1024 * 1024 + 3; // 16 windows
  const ref = String(await client.infer({ type: "obj_make", host: "b" }, { n: size }));
  const badMessage = `OBJECT_RANGE_INVALID: range (offset ${size}, length 10) is outside object ${ref.slice(4, ref.indexOf("?"))} (${size} bytes): expected offset >= 0, length >= 1 and offset + length <= ${size}`;
  for (const host of ["a", "py"]) {
    const got = (await client.infer({ type: "obj_parts", host }, { ref, start: 1_000_001, end: 1_000_100, hold: 1 })) as Record<
      string,
      unknown
    >;
    assert.deepEqual(
      { ...got, held: undefined },
      {
        range: true,
        rangeLength: 100,
        streamed: size,
        inOrder: true,
        bad: badMessage,
        held: undefined,
      },
      host,
    );
    // Arrived and not read while the handler held the stream: within the window (256 KiB) and, for
    // Node, its Readable's own buffer (64 KiB high-water mark, a chunk over it); not the 4 MiB object.
    const held = Number(got.held);
    assert.ok(
      held > 0 && held <= 256 * 1024 + (host === "a" ? 3 * 64 * 1024 : 0),
      `${host}: ${held} bytes arrived while the handler held the stream`,
    );
  }
});
