// The object store is a deployment setting: by default each deployment has its own directory
// beside its file (not /tmp/anyserve-objects shared by every deployment); a top-level
// `object_store:` sets it for every service and a service's own section wins.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { FIXTURES, startCli } from "../helpers/processes.js";

const APP = path.join(FIXTURES, "objects_worker_app.ts:app");

interface Deployment {
  services: Record<string, { replicas: { http: string }[] }>;
}

async function roundtrip(http: string, text: string): Promise<string> {
  const res = await fetch(`${http}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-capability-type": "obj_roundtrip" },
    body: JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [text] }] }),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { outputs: { name: string; data: string[] }[] };
  return body.outputs.find((o) => o.name === "text")!.data[0]!;
}

/** The files of an object store directory (objects, not temp files). */
const objectsIn = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String) : []);

test("each deployment writes its own store: beside the file by default, the file's object_store, a service's own", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-store-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const shared = path.join(dir, "shared-store");
  const own = path.join(dir, "own-store");
  writeFileSync(path.join(dir, "a.yaml"), `api_server: { port: 0, grpc_port: null }\nservices:\n  plain: { app: ${APP} }\n`);
  writeFileSync(
    path.join(dir, "b.yaml"),
    [
      "api_server: { port: 0, grpc_port: null }",
      `object_store: { dir: ./shared-store, max_object_mb: 16 }`,
      "services:",
      `  inherits: { app: ${APP} }`,
      `  owns: { app: ${APP}, object_store: { dir: ${own} } }`,
      "",
    ].join("\n"),
  );
  const a = await startCli(t, ["up", path.join(dir, "a.yaml")], {}, 90_000);
  const b = await startCli(t, ["up", path.join(dir, "b.yaml")], {}, 90_000);
  const replicaOf = async (url: string, service: string) =>
    ((await (await fetch(`${url}/api/deployment`)).json()) as Deployment).services[service]!.replicas[0]!.http;
  const configOf = async (http: string) =>
    ((await (await fetch(`${http}/config`)).json()) as { config: { object_store: { dir: string; max_object_mb: number } } }).config
      .object_store;

  const plain = await replicaOf(a.ready.url!, "plain");
  assert.equal((await configOf(plain)).dir, path.join(dir, ".anyserve", "objects"));
  assert.equal(await roundtrip(plain, "a"), "a");
  assert.ok(objectsIn(path.join(dir, ".anyserve", "objects")).length > 0, "the default store is the deployment's own");

  const inherits = await replicaOf(b.ready.url!, "inherits");
  assert.deepEqual(await configOf(inherits), { ...(await configOf(inherits)), dir: shared, max_object_mb: 16 });
  assert.equal(await roundtrip(inherits, "b"), "b");
  assert.ok(objectsIn(shared).length > 0);

  const owns = await replicaOf(b.ready.url!, "owns");
  const ownConfig = await configOf(owns);
  assert.equal(ownConfig.dir, own);
  assert.equal(ownConfig.max_object_mb, 16, "the file's other defaults still apply");
  assert.equal(await roundtrip(owns, "c"), "c");
  assert.ok(objectsIn(own).length > 0);
});
