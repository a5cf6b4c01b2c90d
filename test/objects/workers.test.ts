// ctx.objects works in worker threads (pool) and child processes (process), on the replica's store.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { Client } from "../../src/sdk/client.js";
import { FIXTURES, startCli } from "../helpers/processes.js";

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
