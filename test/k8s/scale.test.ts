// `POST /api/scale` wherever it arrives (issue 27): on an API server pod of a rendered cluster it
// patches the service's Deployment's `scale` subresource; on an API server started by hand it
// says that no controller runs there. A real cluster cannot run here, so the Kubernetes API is the
// stand-in of test/helpers/k8s-standin.ts (an HTTP server that records every request), and the
// API server — a real `anyserve api-server` process given the environment the rendered manifest
// sets — reaches it through `$KUBECONFIG` instead of the pod's service account (the in-cluster
// config itself, `loadFromCluster`, is not exercised: it needs the pod's token and CA files).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { KubernetesStandin } from "../helpers/k8s-standin.js";
import { FIXTURES, startCli } from "../helpers/processes.js";

const TOKEN = "scale-test-control-token";
const AUTH = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
const DEPLOYMENTS = "/apis/apps/v1/namespaces/serving/deployments";
const standin = new KubernetesStandin();
let dir: string;
let file: string;

before(async () => {
  await standin.start();
  dir = mkdtempSync(path.join(tmpdir(), "anyserve-scale-"));
  file = path.join(dir, "anyserve.yaml");
  const app = path.join(FIXTURES, "test_app.ts:app");
  writeFileSync(
    file,
    JSON.stringify({
      api_server: { port: 0, grpc_port: null },
      services: {
        kv_service: { app, deployment: { replicas: 2 } },
        web: { app },
        chat: { app, autoscaling: { min_replicas: 1, max_replicas: 4 } },
      },
    }),
  );
  // What `k8s apply` made: the services' Deployments (the scaled one at 2).
  for (const [name, replicas] of [
    ["anyserve-kv-service", 2],
    ["anyserve-web", 1],
  ] as const) {
    standin.stored.set(`${DEPLOYMENTS}/${name}`, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: "serving" },
      spec: { replicas },
    });
  }
});
after(async () => {
  await standin.stop();
  rmSync(dir, { recursive: true, force: true });
});

const scale = (url: string, body: unknown, headers: Record<string, string> = AUTH) =>
  fetch(`${url}/api/scale`, { method: "POST", headers, body: JSON.stringify(body) });

async function refused(res: Response, status: number, code: string, message: RegExp): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as { code: string; error: string };
  assert.equal(body.code, code, text);
  assert.match(body.error, message);
}

test("on Kubernetes: POST /api/scale patches the service's Deployment's scale subresource; bounds, autoscaled and unknown services refused", async (t) => {
  const api = await startCli(t, ["api-server", "--port", "0", "--deployment", file], {
    ANYSERVE_TOKEN: TOKEN,
    // What the rendered API server Deployment sets (render.ts): the pod's namespace and the name prefix.
    ANYSERVE_KUBERNETES_NAMESPACE: "serving",
    ANYSERVE_KUBERNETES_NAME: "anyserve",
    KUBECONFIG: standin.kubeconfig,
  });
  const url = api.ready.url!;
  standin.requests.length = 0;

  const ok = await scale(url, { service: "kv_service", replicas: 3 });
  const text = await ok.text();
  assert.equal(ok.status, 200, text);
  assert.deepEqual(JSON.parse(text), {
    success: true,
    services: { kv_service: { deployment: "anyserve-kv-service", namespace: "serving", replicas: 3 } },
  });
  assert.deepEqual(
    standin.requests.map((r) => [r.method, r.path, r.contentType, r.body]),
    [["PATCH", `${DEPLOYMENTS}/anyserve-kv-service/scale`, "application/merge-patch+json", { spec: { replicas: 3 } }]],
  );
  assert.equal(standin.requests[0]!.authorization, "Bearer standin-token", "the configured credentials, never the control-plane token");
  assert.equal(standin.stored.get(`${DEPLOYMENTS}/anyserve-kv-service`)!.spec.replicas, 3);
  // To zero, the schema's lower bound, is a count like any other.
  assert.equal((await scale(url, { service: "kv_service", replicas: 0 })).status, 200);
  assert.equal(standin.stored.get(`${DEPLOYMENTS}/anyserve-kv-service`)!.spec.replicas, 0);

  standin.requests.length = 0;
  for (const replicas of [1001, -1, 2.5, "3", null]) {
    await refused(await scale(url, { service: "kv_service", replicas }), 400, "CONFIG_INVALID", /"replicas": an integer from 0 to 1000/);
  }
  await refused(await scale(url, { replicas: 2 }), 400, "CONFIG_INVALID", /expected \{"service": name/);
  await refused(
    await scale(url, { service: "chat", replicas: 2 }),
    400,
    "CONFIG_INVALID",
    /service 'chat' is autoscaled \(min_replicas 1, max_replicas 4\)/,
  );
  await refused(
    await scale(url, { service: "nope", replicas: 2 }),
    400,
    "CONFIG_INVALID",
    /no service 'nope' is deployed: .*kv_service, web, chat/,
  );
  await refused(await scale(url, { service: "kv_service", replicas: 2 }, {}), 401, "UNAUTHENTICATED", /POST \/api\/scale/);
  assert.deepEqual(standin.requests, [], "nothing refused reaches Kubernetes");

  // Kubernetes refusing (RBAC missing, say): 502 with its answer, nothing changed.
  standin.forbidden.add(`${DEPLOYMENTS}/anyserve-web/scale`);
  await refused(
    await scale(url, { service: "web", replicas: 2 }),
    502,
    "CONTROLLER_UNAVAILABLE",
    /the Kubernetes API did not scale deployment\/anyserve-web in namespace serving: HTTP 403: .*forbidden/,
  );
  assert.equal(standin.stored.get(`${DEPLOYMENTS}/anyserve-web`)!.spec.replicas, 1);

  // Apply is `anyserve k8s apply` there, not a route.
  await refused(await fetch(`${url}/api/apply`, { method: "POST", headers: AUTH, body: "{}" }), 501, "NO_CONTROLLER", /k8s apply/);
});

test("an API server started by hand: POST /api/scale and /api/apply answer NO_CONTROLLER, saying what to do", async (t) => {
  const api = await startCli(t, ["api-server", "--port", "0", "--token", TOKEN]);
  const url = api.ready.url!;
  await refused(await scale(url, { service: "kv_service", replicas: 2 }, {}), 401, "UNAUTHENTICATED", /POST \/api\/scale/);
  await refused(
    await scale(url, { service: "kv_service", replicas: 2 }),
    501,
    "NO_CONTROLLER",
    /this API server runs no deployment controller; .*`anyserve up FILE`.*Kubernetes \(`anyserve k8s apply FILE`\)/,
  );
  await refused(await fetch(`${url}/api/apply`, { method: "POST", headers: AUTH, body: "{}" }), 501, "NO_CONTROLLER", /anyserve up/);
});

test("an API server told it is on Kubernetes without the deployment file refuses to start, saying why", async (t) => {
  await assert.rejects(
    startCli(t, ["api-server", "--port", "0"], { ANYSERVE_KUBERNETES_NAMESPACE: "serving" }),
    /ANYSERVE_KUBERNETES_NAMESPACE is set .*--deployment FILE is needed/,
  );
});
