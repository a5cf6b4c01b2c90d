/** The node flags of the serving processes: added unless the user set the option, and the same in the launcher's shebang. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { SERVING_NODE_FLAGS, servingExecArgv } from "../../src/util/node-flags.js";

test("the serving flags are added before the inherited ones, unless the user set the option either way", () => {
  assert.deepEqual(servingExecArgv([]), [...SERVING_NODE_FLAGS]);
  const OLD = "--initial-old-space-size=64";
  const SEMI = "--min-semi-space-size=8";
  assert.deepEqual(servingExecArgv(["--import", "tsx"]), ["--no-memory-reducer", OLD, SEMI, "--import", "tsx"]);
  assert.deepEqual(servingExecArgv(["--memory-reducer"]), [OLD, SEMI, "--memory-reducer"]);
  assert.deepEqual(servingExecArgv(["--memory_reducer"]), [OLD, SEMI, "--memory_reducer"]);
  assert.deepEqual(servingExecArgv(["--no-memory-reducer"]), [OLD, SEMI, "--no-memory-reducer"]);
  assert.deepEqual(servingExecArgv(["--initial_old_space_size=256"]), ["--no-memory-reducer", SEMI, "--initial_old_space_size=256"]);
  assert.deepEqual(servingExecArgv(["--min_semi_space_size=1"]), ["--no-memory-reducer", OLD, "--min_semi_space_size=1"]);
  // A different option that starts with the same words is not the same option.
  assert.deepEqual(servingExecArgv(["--memory-reducer-for-small-heaps"]), [
    "--no-memory-reducer",
    OLD,
    SEMI,
    "--memory-reducer-for-small-heaps",
  ]);
});

test("bin/anyserve.js's shebang and npm start run node with exactly the serving flags", () => {
  const first = readFileSync(new URL("../../bin/anyserve.js", import.meta.url), "utf8").split("\n")[0];
  assert.equal(first, `#!/usr/bin/env -S node ${SERVING_NODE_FLAGS.join(" ")}`);
  // `npm start` runs `anyserve up`, which hosts the API server in its own process.
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { scripts: { start: string } };
  assert.match(pkg.scripts.start, new RegExp(`^node ${SERVING_NODE_FLAGS.join(" ")} bin/anyserve\\.js up `));
});
