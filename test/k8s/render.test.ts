// `anyserve k8s render` (src/deploy/kubernetes/render.ts): the manifests of the seed's own YAML
// (verbatim plus `app:`) and of every example validate against Kubernetes' published schemas
// (kubernetes-models: the OpenAPI schemas of the API, compiled; no network), and each mapping of the
// deployment file is checked one by one. A real cluster cannot run here, so nothing is applied:
// test/k8s/pods.test.ts starts the rendered pods' exact commands in network namespaces instead.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { ServiceAccount } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";
import { ConfigError } from "../../src/config/errors.js";
import { renderManifests, type Manifest } from "../../src/deploy/kubernetes/render.js";
import { containerOf, findManifest, podSpecOf, type RenderedContainer, type RenderedPodSpec } from "../helpers/k8s-manifests.js";
import { BIN, ROOT } from "../helpers/processes.js";

const SEED = path.join(ROOT, "test", "fixtures", "seed", "service_deployment.yaml");
const EXAMPLES = [path.join(ROOT, "examples", "mvp_demo", "anyserve.yaml")];
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "v1/Secret": Secret,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "v1/ServiceAccount": ServiceAccount,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
};

/** Validates one manifest against its kind's schema; throws with the schema's complaint. */
function validate(m: { apiVersion: string; kind: string }): void {
  const Model = MODELS[`${m.apiVersion}/${m.kind}`];
  assert.ok(Model, `no schema for ${m.apiVersion} ${m.kind}`);
  new Model(structuredClone(m) as never).validate();
}

const find = findManifest;
const container = containerOf;
const podSpec = podSpecOf;
const render = (yaml: string, o: { namespace?: string; token?: string; tokenSecret?: string } = {}) =>
  renderManifests(yaml, { image: "registry.test/app:1", ...o });

test("the validator refuses what Kubernetes would (so the checks below can fail)", () => {
  const api = find(render("services: { s: { app: ./a.ts } }"), "Deployment", "anyserve-api");
  // Broken on purpose, past what the types allow.
  const broken = structuredClone(api);
  Object.assign(broken.spec.template.spec.containers[0]!.ports[0]!, { containerPort: "eighty" });
  assert.throws(() => validate(broken), /containerPort/);
  const noSelector = structuredClone(api);
  Reflect.deleteProperty(noSelector.spec, "selector");
  assert.throws(() => validate(noSelector), /selector/);
  const hpa = find(render("services: { s: { app: ./a.ts, autoscaling: { max_replicas: 2 } } }"), "HorizontalPodAutoscaler", "anyserve-s");
  const noTarget = structuredClone(hpa);
  Reflect.deleteProperty(noTarget.spec, "scaleTargetRef");
  assert.throws(() => validate(noTarget), /scaleTargetRef/);
});

test("the seed's YAML and every example render to manifests that validate against Kubernetes' schemas", () => {
  for (const file of [SEED, ...EXAMPLES]) {
    const ms = render(readFileSync(file, "utf8"), { namespace: "serving", token: "t0ken" });
    assert.ok(ms.length >= 6, file);
    for (const m of ms) {
      assert.equal(m.metadata.namespace, "serving");
      assert.doesNotThrow(() => validate(m), `${file}: ${m.kind} ${m.metadata.name}`);
    }
  }
});

test("the seed's YAML: kv_service pinned to node-storage-01/02, llm_service one GPU, memory_service beside the API server", () => {
  const text = readFileSync(SEED, "utf8");
  const ms = render(text);
  // The file itself, as the ConfigMap every pod mounts.
  assert.equal(find(ms, "ConfigMap", "anyserve-config").data["anyserve.yaml"], text);
  const kv = podSpec(ms, "anyserve-kv-service");
  assert.deepEqual(kv.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms, [
    { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["node-storage-01", "node-storage-02"] }] },
  ]);
  assert.equal(find(ms, "Deployment", "anyserve-kv-service").spec.replicas, 2);
  assert.deepEqual(container(ms, "anyserve-kv-service").resources, {
    requests: { cpu: "2000m", memory: "4096Mi" },
    limits: { cpu: "2000m", memory: "4096Mi" },
  });
  assert.equal(find(ms, "PodDisruptionBudget", "anyserve-kv-service").spec.maxUnavailable, 1);
  const llm = container(ms, "anyserve-llm-service");
  assert.equal(llm.resources.limits["nvidia.com/gpu"], "1");
  assert.equal(podSpec(ms, "anyserve-llm-service").affinity, undefined, "remote_any: no constraint");
  assert.ok(!ms.some((m) => m.kind === "PodDisruptionBudget" && m.metadata.name === "anyserve-llm-service"), "one replica: no PDB");
  const memory = podSpec(ms, "anyserve-memory-service");
  const apiLabels = find(ms, "Deployment", "anyserve-api").spec.template.metadata.labels;
  assert.deepEqual(memory.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution, [
    { labelSelector: { matchLabels: apiLabels }, topologyKey: "kubernetes.io/hostname" },
  ]);
});

test("the API server's RBAC: its own ServiceAccount, allowed only get/patch on deployments/scale in its namespace; told where it runs", () => {
  for (const namespace of [undefined, "ns1"]) {
    const ms = render("services: { kv_service: { app: ./a.ts } }", namespace ? { namespace } : {});
    for (const m of ms) validate(m);
    const sa = find(ms, "ServiceAccount", "anyserve-api");
    assert.equal(sa.metadata.namespace, namespace);
    assert.equal(podSpec(ms, "anyserve-api").serviceAccountName, "anyserve-api");
    const role = find(ms, "Role", "anyserve-api-scale");
    assert.deepEqual(role.rules, [{ apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["get", "patch"] }]);
    const binding = find(ms, "RoleBinding", "anyserve-api-scale");
    assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "anyserve-api-scale" });
    // Without --namespace the ServiceAccount is the one of the binding's namespace (wherever it is applied).
    assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "anyserve-api", ...(namespace ? { namespace } : {}) }]);
    assert.ok(!ms.some((m) => m.kind === "ClusterRole" || m.kind === "ClusterRoleBinding"), "nothing cluster-wide");
    // The pod's namespace (downward API) and the name prefix: how it finds a service's Deployment.
    const env = container(ms, "anyserve-api").env;
    assert.deepEqual(env.find((e) => e.name === "ANYSERVE_KUBERNETES_NAMESPACE")!.valueFrom, {
      fieldRef: { fieldPath: "metadata.namespace" },
    });
    assert.equal(env.find((e) => e.name === "ANYSERVE_KUBERNETES_NAME")!.value, "anyserve");
    // Replica pods get no API access of their own.
    assert.equal(podSpec(ms, "anyserve-kv-service").serviceAccountName, undefined);
  }
});

test("the API server: a Deployment reading the mounted file, a Service with REST and gRPC, a headless Service", () => {
  const ms = render("api_server: { port: 9000, grpc_port: 9001 }\nservices: { s: { app: ./a.ts } }");
  const api = container(ms, "anyserve-api");
  assert.deepEqual(api.command, ["anyserve"]);
  assert.deepEqual(api.args, [
    "api-server",
    "--deployment",
    "/app/anyserve.yaml",
    "--host",
    "0.0.0.0",
    "--port",
    "9000",
    "--grpc-port",
    "9001",
  ]);
  assert.deepEqual(
    api.ports.map((p) => [p.name, p.containerPort]),
    [
      ["http", 9000],
      ["grpc", 9001],
    ],
  );
  assert.deepEqual(api.volumeMounts[0], {
    name: "deployment-file",
    mountPath: "/app/anyserve.yaml",
    subPath: "anyserve.yaml",
    readOnly: true,
  });
  const svc = find(ms, "Service", "anyserve-api").spec;
  assert.deepEqual(
    svc.ports.map((p) => p.port),
    [9000, 9001],
  );
  assert.equal(find(ms, "Deployment", "anyserve-api").spec.replicas, 2, "no single point of failure");
  const headless = find(ms, "Service", "anyserve-api-headless").spec;
  assert.equal(headless.clusterIP, "None");
  assert.equal(headless.publishNotReadyAddresses, true);
  const noGrpc = render("api_server: { grpc_port: null }\nservices: { s: { app: ./a.ts } }");
  assert.ok(!container(noGrpc, "anyserve-api").args.includes("--grpc-port"));
});

/** One row per mapping: a service's YAML, and what its Deployment's pod must show. */
const TABLE: { field: string; service: string; check: (pod: RenderedPodSpec, c: RenderedContainer, ms: Manifest[]) => void }[] = [
  {
    field: "deployment.replicas (> 1: a PodDisruptionBudget)",
    service: "{ app: ./a.ts, deployment: { replicas: 3 } }",
    check: (_p, _c, ms) => {
      assert.equal(find(ms, "Deployment", "anyserve-s").spec.replicas, 3);
      assert.deepEqual(
        find(ms, "PodDisruptionBudget", "anyserve-s").spec.selector.matchLabels,
        find(ms, "Deployment", "anyserve-s").spec.selector.matchLabels,
      );
    },
  },
  {
    field: "deployment.replicas: 0",
    service: "{ app: ./a.ts, deployment: { replicas: 0 } }",
    check: (_p, _c, ms) => assert.equal(find(ms, "Deployment", "anyserve-s").spec.replicas, 0),
  },
  {
    field: "target remote_specific + target_nodes → node affinity on kubernetes.io/hostname",
    service: "{ app: ./a.ts, deployment: { target: remote_specific, target_nodes: [n1] } }",
    check: (p) =>
      assert.deepEqual(
        p.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]!.matchExpressions[0]!.values,
        ["n1"],
      ),
  },
  {
    field: "target cluster_group + node_selector → nodeSelector",
    service: "{ app: ./a.ts, deployment: { target: cluster_group, node_selector: { pool: gpu, zone: a } } }",
    check: (p) => {
      assert.deepEqual(p.nodeSelector, { pool: "gpu", zone: "a" });
      assert.equal(p.affinity, undefined);
    },
  },
  {
    field: "target remote_any → no constraint",
    service: "{ app: ./a.ts, deployment: { target: remote_any } }",
    check: (p) => {
      assert.equal(p.affinity, undefined);
      assert.equal(p.nodeSelector, undefined);
    },
  },
  {
    field: "target local (the default) → pod affinity to the API server's node",
    service: "{ app: ./a.ts }",
    check: (p) =>
      assert.equal(p.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]!.topologyKey, "kubernetes.io/hostname"),
  },
  {
    field: "resources.cpu_cores / memory_mb / gpu_count → requests and limits",
    service: "{ app: ./a.ts, resources: { cpu_cores: 0.5, memory_mb: 256, gpu_count: 2 } }",
    check: (_p, c) =>
      assert.deepEqual(c.resources, {
        requests: { cpu: "500m", memory: "256Mi" },
        limits: { cpu: "500m", memory: "256Mi", "nvidia.com/gpu": "2" },
      }),
  },
  {
    field: "no resources → none requested",
    service: "{ app: ./a.ts }",
    check: (_p, c) => assert.deepEqual(c.resources, {}),
  },
  {
    field: "monitoring → probes on the OIP health routes; unhealthy_restart_after → liveness failures allowed",
    service: "{ app: ./a.ts, monitoring: { health_check_interval: 5, unhealthy_restart_after: 60 } }",
    check: (_p, c) => {
      assert.deepEqual(c.readinessProbe, { httpGet: { path: "/v2/health/ready", port: "http" }, periodSeconds: 5 });
      assert.deepEqual(c.livenessProbe, { httpGet: { path: "/v2/health/live", port: "http" }, periodSeconds: 5, failureThreshold: 12 });
    },
  },
  {
    field: "preStop waits a heartbeat interval; the grace period outlasts it and the drain (performance.timeout)",
    service: "{ app: ./a.ts, performance: { timeout: 120 }, monitoring: { health_check_interval: 4 } }",
    check: (p, c) => {
      assert.deepEqual(c.lifecycle.preStop.exec.command, ["sleep", "4"]);
      assert.ok(p.terminationGracePeriodSeconds > 4 + 120, String(p.terminationGracePeriodSeconds));
    },
  },
  {
    field: "monitoring.enable_metrics → Prometheus scrape annotations (off: none)",
    service: "{ app: ./a.ts, monitoring: { enable_metrics: false } }",
    check: (_p, _c, ms) => {
      const annotations = find(ms, "Deployment", "anyserve-s").spec.template.metadata.annotations;
      assert.equal(annotations["prometheus.io/scrape"], undefined);
      assert.equal(find(ms, "Deployment", "anyserve-api").spec.template.metadata.annotations["prometheus.io/scrape"], "true");
    },
  },
  {
    field: "object_store.dir → an emptyDir mounted there (relative to the app)",
    service: "{ app: ./a.ts, object_store: { dir: data/objects } }",
    check: (p, c) => {
      assert.deepEqual(c.volumeMounts[1], { name: "objects", mountPath: "/app/data/objects" });
      assert.deepEqual(p.volumes[1], { name: "objects", emptyDir: {} });
    },
  },
  {
    field: "everything else (threads, queue, batching, lazy, …) → read by the replica from the mounted file",
    service: "{ app: ./a.ts, deployment: { threading_strategy: multi, thread_count: 3 }, performance: { queue_size: 7 } }",
    check: (_p, c) => {
      assert.deepEqual(c.args.slice(0, 5), ["start", "--deployment", "/app/anyserve.yaml", "--service", "s"]);
      assert.ok(!c.args.some((a: string) => a.includes("thread") || a.includes("queue")), c.args.join(" "));
      assert.deepEqual(c.args.slice(5), [
        "--host",
        "0.0.0.0",
        "--advertise-host",
        "$(POD_IP)",
        "--node",
        "$(NODE_NAME)",
        "--port",
        "50051",
        "--http-port",
        "8000",
        "--api-server",
        "http://anyserve-api-headless:8080",
      ]);
      assert.deepEqual(c.env[0], { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } });
    },
  },
];

for (const row of TABLE) {
  test(`mapping: ${row.field}`, () => {
    const ms = render(`services:\n  s: ${row.service}\n`);
    for (const m of ms) validate(m);
    row.check(podSpec(ms, "anyserve-s"), container(ms, "anyserve-s"), ms);
  });
}

test("fields with no Kubernetes counterpart are refused with the reason, never dropped", () => {
  const refused = (yaml: string): string[] => {
    try {
      render(yaml);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.issues.map((i) => `${i.path}: ${i.message}`);
    }
    assert.fail(`rendered: ${yaml}`);
  };
  const issues = refused(
    "node: { name: box }\napi_server: { tls_cert: c.pem, tls_key: k.pem }\nservices: { s: { app: ./a.ts, tls: { ca: ca.pem } } }",
  );
  assert.equal(issues.length, 4, issues.join("\n"));
  assert.match(issues[0]!, /^node: cannot be carried over to Kubernetes: .*node_selector/);
  assert.match(issues[1]!, /^api_server\.tls_cert: .*Secret/);
  assert.match(issues[3]!, /^services\.s\.tls: .*Secret/);
  // Two services whose Kubernetes names would be the same.
  assert.match(refused("services: { a_b: { app: ./a.ts }, a-b: { app: ./a.ts } }")[0]!, /anyserve-a-b is also service a_b/);
  // A bad file is the config's error, as for up.
  assert.match(refused("services: { s: { app: ./a.ts, deployment: { replicas: -1 } } }")[0]!, /replicas/);
});

test("anyserve k8s render prints the manifests as YAML documents; a refused file exits 2 with the reason", (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-render-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = path.join(dir, "token");
  const args = [BIN, "k8s", "render", SEED, "--image", "r/app:2", "--namespace", "ns1", "--token-file", tokenFile];
  const ok = spawnSync(process.execPath, args, { encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /control-plane token made in .*token/);
  const token = readFileSync(tokenFile, "utf8").trim();
  assert.ok(!ok.stdout.includes(token), "only base64 in the Secret's data");
  const docs = parseAllDocuments(ok.stdout).map((d) => d.toJS() as Manifest);
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata.name}`),
    [
      "ConfigMap/anyserve-config",
      "Secret/anyserve-token",
      "ServiceAccount/anyserve-api",
      "Role/anyserve-api-scale",
      "RoleBinding/anyserve-api-scale",
      "Deployment/anyserve-api",
      "Service/anyserve-api",
      "Service/anyserve-api-headless",
      "Deployment/anyserve-kv-service",
      "PodDisruptionBudget/anyserve-kv-service",
      "Deployment/anyserve-llm-service",
      "Deployment/anyserve-memory-service",
    ],
  );
  for (const d of docs) validate(d);
  assert.equal(container(docs, "anyserve-llm-service").image, "r/app:2");
  assert.equal(Buffer.from(find(docs, "Secret", "anyserve-token").data.token!, "base64").toString(), token);
  // Rendered again: the same token (the file is reused, as up reuses it), and --token-secret renders no Secret.
  const again = spawnSync(process.execPath, args, { encoding: "utf8" });
  assert.equal(again.stdout, ok.stdout);
  assert.equal(again.stderr, "");
  const ref = spawnSync(process.execPath, [BIN, "k8s", "render", SEED, "--token-secret", "prod-token"], { encoding: "utf8" });
  assert.equal(ref.status, 0, ref.stderr);
  const refDocs = parseAllDocuments(ref.stdout).map((d) => d.toJS() as Manifest);
  assert.ok(!refDocs.some((d) => d.kind === "Secret"));
  assert.equal(container(refDocs, "anyserve-api").env[0]!.valueFrom.secretKeyRef.name, "prod-token");
  const bad = spawnSync(process.execPath, [BIN, "k8s", "render", "/nonexistent/anyserve.yaml"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /cannot read the file/);
  const docker = spawnSync(process.execPath, [BIN, "k8s", "dockerfile"], { encoding: "utf8" });
  assert.match(docker.stdout, /^FROM node:20/m);
  assert.match(docker.stdout, /node_modules\/\.bin/);
});

test("the control-plane token: a Secret every pod reads ANYSERVE_TOKEN from, never in the ConfigMap or a command line", () => {
  const token = "s3cret-t0ken-value";
  const ms = render("services: { s: { app: ./a.ts }, t: { app: ./a.ts, deployment: { replicas: 2 } } }", { token });
  const secret = find(ms, "Secret", "anyserve-token");
  assert.equal(secret.type, "Opaque");
  assert.equal(Buffer.from(secret.data.token!, "base64").toString(), token);
  const ref = { name: "ANYSERVE_TOKEN", valueFrom: { secretKeyRef: { name: "anyserve-token", key: "token" } } };
  for (const name of ["anyserve-api", "anyserve-s", "anyserve-t"]) {
    assert.deepEqual(
      container(ms, name).env.filter((e) => e.name === "ANYSERVE_TOKEN"),
      [ref],
      name,
    );
  }
  for (const m of ms) {
    validate(m);
    if (m.kind !== "Secret") assert.ok(!JSON.stringify(m).includes(token), `${m.kind} ${m.metadata.name} holds the token`);
  }
  // An existing Secret: referenced, not rendered.
  const byRef = render("services: { s: { app: ./a.ts } }", { tokenSecret: "prod-token" });
  assert.ok(!byRef.some((m) => m.kind === "Secret"));
  assert.deepEqual(container(byRef, "anyserve-s").env.at(-1)!.valueFrom.secretKeyRef, { name: "prod-token", key: "token" });
  // Neither: the pods still need a token — the Secret <name>-token, which must exist.
  const neither = render("services: { s: { app: ./a.ts } }");
  assert.ok(!neither.some((m) => m.kind === "Secret"));
  assert.deepEqual(container(neither, "anyserve-api").env[0], ref);
  assert.throws(() => render("services: { s: { app: ./a.ts } }", { token, tokenSecret: "x" }), /not both/);
});

test("autoscaling: a HorizontalPodAutoscaler on ongoing requests per pod; the Deployment leaves its replicas to it", () => {
  const ms = render(
    "services:\n  s: { app: ./a.ts, deployment: { replicas: 5 }, autoscaling: { min_replicas: 2, max_replicas: 7, target_ongoing_requests: 1.5, upscale_delay_s: 10.5, downscale_delay_s: 300, look_back_period_s: 20, metrics_interval_s: 5 } }\n",
  );
  for (const m of ms) validate(m);
  const d = find(ms, "Deployment", "anyserve-s");
  assert.ok(!("replicas" in d.spec), "the HPA owns the count: apply must not reset it");
  const hpa = find(ms, "HorizontalPodAutoscaler", "anyserve-s");
  assert.equal(hpa.apiVersion, "autoscaling/v2");
  assert.deepEqual(hpa.spec, {
    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "anyserve-s" },
    minReplicas: 2,
    maxReplicas: 7,
    metrics: [
      { type: "Pods", pods: { metric: { name: "anyserve_replica_ongoing" }, target: { type: "AverageValue", averageValue: "1.5" } } },
    ],
    behavior: { scaleUp: { stabilizationWindowSeconds: 11 }, scaleDown: { stabilizationWindowSeconds: 300 } },
  });
  assert.deepEqual(hpa.metadata.annotations, { "anyserve.dev/look-back-period-s": "20", "anyserve.dev/metrics-interval-s": "5" });
  assert.deepEqual(hpa.metadata.labels, d.metadata.labels);
  assert.ok(
    ms.some((m) => m.kind === "PodDisruptionBudget"),
    "up to 7 pods: a PDB",
  );
  // The defaults (Ray Serve's) carry over; max 1: no PDB.
  const small = render("services:\n  s: { app: ./a.ts, autoscaling: { max_replicas: 1 } }\n");
  const h = find(small, "HorizontalPodAutoscaler", "anyserve-s").spec;
  assert.deepEqual([h.minReplicas, h.maxReplicas, h.metrics[0]!.pods.target.averageValue], [1, 1, "2"]);
  assert.deepEqual(h.behavior, { scaleUp: { stabilizationWindowSeconds: 30 }, scaleDown: { stabilizationWindowSeconds: 600 } });
  assert.ok(!small.some((m) => m.kind === "PodDisruptionBudget"));
  // A service without the section: replicas as set, no HPA.
  const fixed = render("services: { s: { app: ./a.ts, deployment: { replicas: 3 } } }");
  assert.equal(find(fixed, "Deployment", "anyserve-s").spec.replicas, 3);
  assert.ok(!fixed.some((m) => m.kind === "HorizontalPodAutoscaler"));
});

test("autoscaling an HPA cannot carry is refused with the reason: scale to zero, no max_replicas, delays over 3600 s", () => {
  let issues: string[] = [];
  try {
    render(
      "services:\n  s: { app: ./a.ts, autoscaling: { min_replicas: 0, downscale_delay_s: 7200 } }\n  t: { app: ./a.ts, autoscaling: { max_replicas: 3 } }\n",
    );
    assert.fail("rendered");
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    issues = err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.equal(issues.length, 3, issues.join("\n"));
  assert.match(
    issues[0]!,
    /^services\.s\.autoscaling\.min_replicas: cannot be carried over to Kubernetes: 0 \(scale to zero\).*HPA's minimum is 1.*KEDA/,
  );
  assert.match(issues[1]!, /^services\.s\.autoscaling\.max_replicas: .*required on Kubernetes/);
  assert.match(issues[2]!, /^services\.s\.autoscaling\.downscale_delay_s: .*7200 s .*3600 s/);
});
