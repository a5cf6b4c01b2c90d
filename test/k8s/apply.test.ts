// `anyserve k8s apply` / `delete` against a stand-in of the Kubernetes API: a real cluster cannot
// run here, so a small HTTP server in this test answers like the API server does for what the
// client uses — discovery (`/api/v1`, `/apis/{group}/{version}`), server-side apply PATCHes
// (stored, `metadata.generation` counted), reads of Deployments (whose status rolls out over two
// reads, as a Deployment controller would report it) and DELETEs — and records every request.
// The CLI runs as a real process with a kubeconfig pointing at it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { renderManifests } from "../../src/deploy/kubernetes/render.js";
import { BIN, ROOT } from "../helpers/processes.js";

const SEED = path.join(ROOT, "test", "fixtures", "seed", "service_deployment.yaml");
type Obj = Record<string, any>;
interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  body: Obj | undefined;
}
const RESOURCES: Record<string, { group: string; kind: string; plural: string }[]> = {
  "/api/v1": [
    { group: "v1", kind: "ConfigMap", plural: "configmaps" },
    { group: "v1", kind: "Service", plural: "services" },
    { group: "v1", kind: "Secret", plural: "secrets" },
  ],
  "/apis/apps/v1": [{ group: "apps/v1", kind: "Deployment", plural: "deployments" }],
  "/apis/policy/v1": [{ group: "policy/v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets" }],
};

const requests: Recorded[] = [];
const stored = new Map<string, Obj>();
/** Reads of each Deployment since its last apply: its rollout completes on the second. */
const reads = new Map<string, number>();
let neverRollOut = false;
let dir: string;
let kubeconfig: string;
const server = createServer((req, res) => void handle(req, res));

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://standin");
  let text = "";
  for await (const c of req) text += c;
  const body = text ? (JSON.parse(text) as Obj) : undefined;
  requests.push({
    method: req.method!,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    contentType: req.headers["content-type"],
    body,
  });
  const send = (status: number, value: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(value));
  };
  const list = RESOURCES[url.pathname];
  if (req.method === "GET" && list) {
    return send(200, {
      kind: "APIResourceList",
      groupVersion: list[0]!.group,
      resources: list.map((r) => ({ name: r.plural, singularName: "", namespaced: true, kind: r.kind, verbs: ["get", "patch", "delete"] })),
    });
  }
  const m = /^\/(?:api|apis\/[^/]+)\/v1\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (!m) return send(404, { kind: "Status", code: 404, message: `no route ${req.method} ${url.pathname}` });
  const key = url.pathname;
  const had = stored.get(key);
  if (req.method === "PATCH") {
    const generation = (had?.metadata?.generation ?? 0) + 1;
    const obj = { ...body, metadata: { ...body!.metadata, generation } };
    stored.set(key, obj);
    reads.set(key, 0);
    return send(had ? 200 : 201, obj);
  }
  if (!had)
    return send(404, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: `${m[3]} not found` });
  if (req.method === "DELETE") {
    stored.delete(key);
    return send(200, { kind: "Status", apiVersion: "v1", status: "Success" });
  }
  const n = (reads.get(key) ?? 0) + 1;
  reads.set(key, n);
  const replicas = had.spec?.replicas ?? 1;
  const done = !neverRollOut && n >= 2;
  return send(200, {
    ...had,
    status: {
      observedGeneration: had.metadata.generation,
      replicas,
      updatedReplicas: done ? replicas : 0,
      availableReplicas: done ? replicas : 0,
    },
  });
}

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The deployment's token file in the test's directory (by default it would be made beside the seed's file).
    const argv = [BIN, "k8s", ...args, "--kubeconfig", kubeconfig, "--token-file", path.join(dir, "token")];
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  dir = mkdtempSync(path.join(tmpdir(), "anyserve-k8s-"));
  kubeconfig = path.join(dir, "kubeconfig");
  // The stand-in speaks plain HTTP; the client accepts that only with TLS checks off.
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "standin", cluster: { server: `http://127.0.0.1:${port}`, "insecure-skip-tls-verify": true } }],
      users: [{ name: "tester", user: { token: "standin-token" } }],
      contexts: [{ name: "standin", context: { cluster: "standin", user: "tester", namespace: "serving" } }],
      "current-context": "standin",
    }),
  );
});
after(() => {
  server.close();
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
  neverRollOut = true;
  try {
    const r = await cli("apply", SEED, "--timeout", "1");
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /not rolled out in 1 s: deployment\/anyserve-/);
  } finally {
    neverRollOut = false;
  }
});

test("k8s delete: everything apply made, last first; what is already gone is skipped", async () => {
  requests.length = 0;
  const r = await cli("delete", SEED);
  assert.equal(r.code, 0, r.stderr);
  const deletes = requests.filter((q) => q.method === "DELETE").map((q) => q.path.split("/").slice(-2).join("/"));
  assert.equal(deletes.length, 9);
  assert.ok(deletes.includes("secrets/anyserve-token"), deletes.join(", "));
  assert.equal(deletes[0], "deployments/anyserve-memory-service");
  assert.equal(deletes.at(-1), "configmaps/anyserve-config");
  assert.equal(stored.size, 0);
  const again = await cli("delete", SEED);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /configmap\/anyserve-config not found/);
});
