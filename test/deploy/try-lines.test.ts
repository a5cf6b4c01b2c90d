// The "Try:" lines `anyserve up` prints are calls that work: run as printed (by sh and curl, as a
// user pastes them), a class service's `set` stores what its `get` then answers, and a plain
// handler answers its text.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { FIXTURES, startCli, waitFor } from "../helpers/processes.js";

const run = promisify(execFile);

test("up's Try lines work when pasted: set then get on a class service, and a plain handler", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-try-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "anyserve.yaml");
  writeFileSync(
    file,
    [
      "api_server: { port: 0, grpc_port: null }",
      "services:",
      `  kv: { app: ${path.join(FIXTURES, "seed", "services.ts:KVService")} }`,
      `  demo: { app: ${path.join(FIXTURES, "test_app.ts:app")} }`,
      "",
    ].join("\n"),
  );
  const up = await startCli(t, ["up", file], {}, 90_000);
  const text = up.output.join("\n");
  const commands = [...text.matchAll(/^ {2}(curl .*\\)\n {4}(-d '.*')$/gm)].map((m) => `${m[1]!.slice(0, -1)} ${m[2]!}`);
  const byMethod = (name: string) => commands.find((c) => c.includes(`X-Capability-Method: ${name}'`));
  const set = byMethod("set");
  const get = byMethod("get");
  assert.ok(set && get, `no set/get lines in:\n${text}`);
  const sh = async (cmd: string) =>
    JSON.parse((await run("sh", ["-c", cmd])).stdout) as { outputs?: { data: unknown[] }[]; error?: string };
  // Both replicas registered before the ready line; the first call may still race the route table.
  await waitFor("set answers", async () => (await sh(set)).outputs !== undefined, 15_000);
  const answer = await sh(get);
  assert.deepEqual(answer.outputs?.[0]?.data, [JSON.stringify("value")], "get answers what set stored");
  const echo = commands.find((c) => c.includes("X-Capability-Type: echo'"));
  assert.ok(echo, "a line for the plain handler");
  assert.deepEqual((await sh(echo)).outputs?.[0]?.data, ["hello there"]);
});
