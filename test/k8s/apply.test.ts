// `anyserve k8s apply` / `delete` against a stand-in of the Kubernetes API
// (test/helpers/k8s-standin.ts): a real cluster cannot run here, so a small HTTP server in this
// test answers like the API server does for what the client uses and records every request. The
// CLI runs as a real process with a kubeconfig pointing at it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { renderManifests } from "../../src/deploy/kubernetes/render.js";
import { KubernetesStandin } from "../helpers/k8s-standin.js";
import { BIN, ROOT } from "../helpers/processes.js";

const SEED = path.join(ROOT, "test", "fixtures", "seed", "service_deployment.yaml");
const standin = new KubernetesStandin();
const { requests, stored } = standin;
let dir: string;

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The deployment's token file in the test's directory (by default it would be made beside the seed's file).
    const argv = [BIN, "k8s", ...args, "--kubeconfig", standin.kubeconfig, "--token-file", path.join(dir, "token")];
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  await standin.start();
  dir = mkdtempSync(path.join(tmpdir(), "anyserve-k8s-"));
});
after(async () => {
  await standin.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("k8s apply: every manifest server-side applied in order, into the context's namespace, then the rollout waited for", async () => {
  requests.length = 0;
  const r = await cli("apply", SEED, "--image", "r/app:3");
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const patches = requests.filter((q) => q.method === "PATCH");
  const token = readFileSync(path.join(dir, "token"), "utf8").trim();
  assert.match(token, /^[A-Za-z0-9_-]{43}$/, "256 random bits, made on first use");
  const expected = renderManifests(readFileSync(SEED, "utf8"), { image: "r/app:3", token });
  assert.deepEqual(
    patches.map((p) => p.path),
    [
      "/api/v1/namespaces/serving/configmaps/anyserve-config",
      "/api/v1/namespaces/serving/secrets/anyserve-token",
      "/api/v1/namespaces/serving/serviceaccounts/anyserve-api",
      "/apis/rbac.authorization.k8s.io/v1/namespaces/serving/roles/anyserve-api-scale",
      "/apis/rbac.authorization.k8s.io/v1/namespaces/serving/rolebindings/anyserve-api-scale",
      "/apis/apps/v1/namespaces/serving/deployments/anyserve-api",
      "/api/v1/namespaces/serving/services/anyserve-api",
      "/api/v1/namespaces/serving/services/anyserve-api-headless",
      "/apis/apps/v1/namespaces/serving/deployments/anyserve-kv-service",
      "/apis/policy/v1/namespaces/serving/poddisruptionbudgets/anyserve-kv-service",
      "/apis/apps/v1/namespaces/serving/deployments/anyserve-llm-service",
      "/apis/apps/v1/namespaces/serving/deployments/anyserve-memory-service",
    ],
  );
  patches.forEach((p, i) => {
    assert.equal(p.contentType, "application/apply-patch+yaml");
    assert.equal(p.query.fieldManager, "anyserve");
    assert.equal(p.query.force, "true");
    assert.deepEqual(p.body, { ...expected[i], metadata: { ...expected[i]!.metadata, namespace: "serving" } });
  });
  assert.ok(requests.some((q) => q.method === "GET" && q.path === "/apis/apps/v1/namespaces/serving/deployments/anyserve-kv-service"));
  assert.match(r.stdout, /deployment\/anyserve-kv-service: 0\/2 updated, 0\/2 available\n/);
  assert.match(r.stdout, /deployment\/anyserve-kv-service: 2\/2 updated, 2\/2 available: rolled out/);
  assert.match(r.stdout, /\nrolled out\n$/);
});

test("k8s apply: a rollout that does not finish in --timeout fails, naming what is pending", async () => {
  standin.neverRollOut = true;
  try {
    const r = await cli("apply", SEED, "--timeout", "1");
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /not rolled out in 1 s: deployment\/anyserve-/);
  } finally {
    standin.neverRollOut = false;
  }
});

test("k8s delete: everything apply made, last first; what is already gone is skipped", async () => {
  requests.length = 0;
  const r = await cli("delete", SEED);
  assert.equal(r.code, 0, r.stderr);
  const deletes = requests.filter((q) => q.method === "DELETE").map((q) => q.path.split("/").slice(-2).join("/"));
  assert.equal(deletes.length, 12);
  assert.ok(deletes.includes("secrets/anyserve-token"), deletes.join(", "));
  assert.equal(deletes[0], "deployments/anyserve-memory-service");
  assert.equal(deletes.at(-1), "configmaps/anyserve-config");
  assert.equal(stored.size, 0);
  const again = await cli("delete", SEED);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /configmap\/anyserve-config not found/);
});
