// The rendered manifests run, not only parse. A real cluster cannot run here, so this test plays
// the kubelet for `anyserve k8s render`'s Deployments: each pod is a network namespace
// (test/helpers/netns.ts) with its own IP, running exactly its pod template's command, arguments
// (with $(VAR) expanded from the template's env, status.podIP and spec.nodeName filled in as the
// kubelet does), environment, working directory and ports; its volumes are mounted in a mount
// namespace of its own (`unshare -m`): the ConfigMap's file at its subPath mount, a fresh directory
// for each emptyDir; /etc/hosts stands in for cluster DNS (the Service name → the first API server
// pod, as a ClusterIP would pick one; the headless Service's name → both API server pods). Then the
// deployment answers across the pods: readiness probes, every replica registered with both API
// server pods (with the control-plane token, which reaches the pods only through the rendered
// Secret's secretKeyRef: this kubelet resolves it from that Secret), the control plane closed
// without it, routing, ctx.call, objects, and one API server pod killed while the other serves.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { IDeployment } from "kubernetes-models/apps/v1";
import { renderManifests, type Manifest } from "../../src/deploy/kubernetes/render.js";
import { Client } from "../../src/sdk/client.js";
import { findManifest, type Rendered } from "../helpers/k8s-manifests.js";
import { makeLan, netnsUnavailable, type Lan } from "../helpers/netns.js";
import { BIN, Cleanups, FIXTURES, ROOT, startCli, waitFor, type Proc } from "../helpers/processes.js";

const why = netnsUnavailable();
const hooks = new Cleanups();
const DEPLOYMENT = `# Rendered by test/k8s/pods.test.ts
api_server: { port: 8080, grpc_port: 8081 }
services:
  host_a:
    app: ./multihost_app.ts:app
    deployment: { target: remote_any }
    monitoring: { health_check_interval: 0.5 }
  host_b:
    app: ./multihost_app.ts:app
    deployment: { target: remote_any, replicas: 2 }
    monitoring: { health_check_interval: 0.5 }
`;
let lan: Lan;
let manifests: Manifest[];
let apiUrl: string;
const apiUrls: string[] = [];
const apiPods: Proc[] = [];
/** The control-plane token the rendered Secret carries (the pods get it only through it). */
const TOKEN = randomBytes(32).toString("base64url");
const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
/** Pod name → its namespace's address. */
const podIps: Record<string, string> = {};

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Starts one pod of `deployment` in the LAN host `host`, as the kubelet would. */
async function runPod(
  deployment: Rendered<IDeployment>,
  host: string,
  o: { appDir: string; hostsFile: string; binDir: string; scratch: string },
) {
  const spec = deployment.spec.template.spec;
  const c = spec.containers[0]!;
  const { address, ns } = lan.hosts[host]!;
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    const secretRef = e.valueFrom?.secretKeyRef;
    if (secretRef) {
      // As the kubelet does: the key's value from the Secret, base64-decoded (here: the rendered one).
      const value = findManifest(manifests, "Secret", secretRef.name).data[secretRef.key];
      assert.ok(value, `env ${e.name}: no Secret ${secretRef.name} with key ${secretRef.key}`);
      env[e.name] = Buffer.from(value, "base64").toString();
      continue;
    }
    const fields: Record<string, string> = { "status.podIP": address, "spec.nodeName": `node-${host}`, "metadata.namespace": "default" };
    assert.ok(field === undefined || fields[field] !== undefined, `env ${e.name}: fieldRef ${field} is not played here`);
    env[e.name] = field !== undefined ? fields[field]! : String(e.value);
  }
  const args = c.args.map((a) => a.replace(/\$\((\w+)\)/g, (m, name: string) => env[name] ?? m));
  const mounts: string[] = [`mount --bind ${q(o.hostsFile)} /etc/hosts`];
  for (const m of c.volumeMounts) {
    const volume = spec.volumes.find((v) => v.name === m.name)!;
    let source: string;
    if (volume.configMap) {
      const cm = findManifest(manifests, "ConfigMap", volume.configMap.name);
      source = path.join(o.scratch, `${host}-${m.name}-${m.subPath}`);
      writeFileSync(source, cm.data[m.subPath]!);
      writeFileSync(m.mountPath, ""); // the mount point, in the image
    } else {
      assert.deepEqual(volume.emptyDir, {}, `volume ${m.name}: only configMap and emptyDir are played here`);
      source = mkdtempSync(path.join(o.scratch, `${host}-${m.name}-`));
      mkdirSync(m.mountPath, { recursive: true });
    }
    mounts.push(`mount --bind ${q(source)} ${q(m.mountPath)}`);
  }
  const script = `set -e; ${mounts.join("; ")}; exec "$@"`;
  const command = ["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", ...c.command, ...args];
  const pathEnv = `${o.binDir}:${path.dirname(process.execPath)}:${process.env.PATH ?? ""}`;
  const proc = await startCli(hooks, [deployment.metadata.name, host], { ...env, PATH: pathEnv }, 60_000, {
    command: { file: command[0]!, args: command.slice(1), cwd: c.workingDir },
  });
  podIps[`${deployment.metadata.name}@${host}`] = address;
  // The pod's ports are the template's: its readiness probe answers on the named port.
  const port = c.ports.find((p) => p.name === c.readinessProbe.httpGet.port)!.containerPort;
  await waitFor(
    `${deployment.metadata.name} on ${host} ready`,
    async () => (await fetch(`http://${address}:${port}${c.readinessProbe.httpGet.path}`, { signal: AbortSignal.timeout(1_000) })).ok,
    30_000,
    100,
  );
  return proc;
}

describe("the rendered pods run and the deployment answers across them", { skip: why }, () => {
  before(async () => {
    lan = makeLan(["api1", "api2", "a", "b1", "b2"]);
    hooks.after(() => lan.remove());
    // The image's /app: the app (inside the repo, so `import "anyserve"` resolves as in the image).
    const appDir = mkdtempSync(path.join(ROOT, "test", "k8s", ".pods-"));
    hooks.after(() => rmSync(appDir, { recursive: true, force: true }));
    copyFileSync(path.join(FIXTURES, "multihost_app.ts"), path.join(appDir, "multihost_app.ts"));
    const scratch = mkdtempSync(path.join(tmpdir(), "anyserve-pods-"));
    hooks.after(() => rmSync(scratch, { recursive: true, force: true }));
    // The image's PATH has `anyserve` on it (the Dockerfile's node_modules/.bin).
    const binDir = path.join(scratch, "bin");
    mkdirSync(binDir);
    symlinkSync(BIN, path.join(binDir, "anyserve"));
    manifests = renderManifests(DEPLOYMENT, { image: "test/app:1", appDir, token: TOKEN });
    const hostsFile = path.join(scratch, "hosts");
    const [api1, api2] = [lan.hosts.api1!.address, lan.hosts.api2!.address];
    writeFileSync(hostsFile, `127.0.0.1 localhost\n${api1} anyserve-api\n${api1} anyserve-api-headless\n${api2} anyserve-api-headless\n`);
    const o = { appDir, hostsFile, binDir, scratch };
    const deployment = (name: string) => findManifest(manifests, "Deployment", name);
    const api = deployment("anyserve-api");
    assert.equal(api.spec.replicas, 2);
    [apiPods[0], apiPods[1]] = await Promise.all([runPod(api, "api1", o), runPod(api, "api2", o)]);
    apiUrls.push(`http://${api1}:8080`, `http://${api2}:8080`);
    apiUrl = apiUrls[0]!;
    const b = deployment("anyserve-host-b");
    assert.equal(b.spec.replicas, 2);
    await Promise.all([runPod(deployment("anyserve-host-a"), "a", o), runPod(b, "b1", o), runPod(b, "b2", o)]);
    for (const url of apiUrls) {
      await waitFor(
        `3 replicas registered at ${url}`,
        async () => ((await (await fetch(`${url}/registry`, auth)).json()) as { replicas: unknown[] }).replicas.length === 3,
        20_000,
      );
    }
  });
  after(() => hooks.run());

  test("each replica pod registered its pod IP (advertised; it binds 0.0.0.0) and its node with both API server pods", async () => {
    for (const url of apiUrls) {
      const { replicas } = (await (await fetch(`${url}/registry`, auth)).json()) as {
        replicas: { service: string; http_endpoint: string; node: string }[];
      };
      const seen = replicas.map((r) => [r.service, new URL(r.http_endpoint).hostname, r.node]).sort();
      assert.deepEqual(seen, [
        ["host_a", lan.hosts.a!.address, "node-a"],
        ["host_b", lan.hosts.b1!.address, "node-b1"],
        ["host_b", lan.hosts.b2!.address, "node-b2"],
      ]);
    }
  });

  test("the API server pods hold the Secret's token: the control plane is closed to anyone without it", async () => {
    for (const url of apiUrls) {
      assert.equal((await fetch(`${url}/registry`)).status, 401);
      assert.equal((await fetch(`${url}/registry`, { headers: { authorization: "Bearer wrong" } })).status, 401);
      const register = await fetch(`${url}/register`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      assert.equal(register.status, 401, "an intruder cannot register a replica");
    }
    // The replicas' /metrics stays open: what Prometheus scrapes for the HPA's metric (docs/scale-out.md).
    const metrics = await fetch(`http://${lan.hosts.a!.address}:8000/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^anyserve_replica_in_flight\{/m);
  });

  test("through the API server's Service: routing to both of host_b's pods, ctx.call across, an object made on one pod read on another", async (t) => {
    const client = new Client({ apiServer: apiUrl, direct: false, timeout: 10_000 });
    t.after(() => client.close());
    assert.match(String(await client.infer({ type: "where", host: "a" }, {})), /./);
    const answered = new Set<string>();
    await waitFor(
      "both host_b pods answer",
      async () => answered.add(String(await client.infer({ type: "where", host: "b" }, {}))).size === 2,
      10_000,
      1,
    );
    const call = (await client.infer({ type: "call_other", host: "a" }, {})) as { callee: string };
    assert.ok(answered.has(call.callee), JSON.stringify(call));
    const ref = String(await client.infer({ type: "obj_put", host: "a" }, { text: "from pod a" }));
    assert.ok(ref.includes(lan.hosts.a!.address), ref);
    assert.equal(await client.infer({ type: "obj_get", host: "b" }, { ref }), "from pod a");
  });

  test("one API server pod killed: the other still routes to every replica", async (t) => {
    apiPods[0]!.child.kill("SIGKILL");
    await apiPods[0]!.exited;
    const client = new Client({ apiServer: apiUrls[1]!, direct: false, timeout: 10_000 });
    t.after(() => client.close());
    const answered = new Set<string>();
    for (let i = 0; i < 20; i++) {
      answered.add(String(await client.infer({ type: "where", host: "a" }, {})));
      answered.add(String(await client.infer({ type: "where", host: "b" }, {})));
    }
    assert.equal(answered.size, 3, [...answered].join(", "));
  });
});
