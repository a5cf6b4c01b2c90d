// `anyserve start --deployment FILE --service NAME` (what the rendered pods run): the service's
// config comes from the file; a service the file lacks, or a service-config flag beside the file,
// is refused (exit 2) with what was expected and what was given. Running it: test/k8s/pods.test.ts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { BIN, ROOT } from "../helpers/processes.js";

const SEED = path.join(ROOT, "test", "fixtures", "seed", "service_deployment.yaml");
const start = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, "start", "--deployment", SEED, ...args], { encoding: "utf8", timeout: 30_000 });

test("start --deployment: an unknown or missing --service is refused, naming the file's services", () => {
  const unknown = start("--service", "nope");
  assert.equal(unknown.status, 2, unknown.stderr);
  assert.match(unknown.stderr, /expected one of kv_service, llm_service, memory_service, got 'nope'/);
  const none = start();
  assert.equal(none.status, 2, none.stderr);
  assert.match(none.stderr, /got nothing/);
});

test("start --deployment: service-config flags beside the file are refused; identity flags are not", () => {
  const r = start("--service", "kv_service", "--queue-size", "5", "--threading-strategy", "async");
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /carries service kv_service's config; drop --threading-strategy, --queue-size/);
  const bad = start("--service", "kv_service", "--advertise-host", "not a host");
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--advertise-host/);
});
