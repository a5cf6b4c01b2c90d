/**
 * `anyserve k8s render`: a deployment file as Kubernetes manifests that a cluster runs as they are.
 * Kubernetes is the scheduler here (anyserve grows none of its own): it places pods by node name
 * and labels, reserves CPU, memory and GPUs, restarts failed pods and rolls out changes. This file
 * maps the deployment file onto that, field by field (docs/scale-out.md has the table):
 *
 * - the file itself → a ConfigMap, mounted into every pod beside the app (`<appDir>/anyserve.yaml`),
 *   so the pods read the same file `up` reads: `anyserve api-server --deployment …` and
 *   `anyserve start --deployment … --service NAME` resolve it with the same code, not a long
 *   command line;
 * - the API server → a Deployment (2 pods by default), a Service (REST, gRPC; metrics on the REST
 *   port) for clients and a headless Service (one DNS record per API server pod) that replicas
 *   register with — each replica with every API server pod, so any of them routes any request;
 *   a ServiceAccount with a Role allowing only `get`/`patch` on `deployments/scale`, so that
 *   `POST /api/scale` on any API server pod scales a service (kubernetes/scale.ts; kubernetes/rbac.ts);
 * - each service → a Deployment (and a PodDisruptionBudget when replicas > 1) whose pods bind
 *   0.0.0.0 and advertise their pod IP (`--advertise-host $(POD_IP)`), probed and stopped as
 *   kubernetes/probes.ts says and placed as kubernetes/placement.ts says; its `autoscaling`
 *   section → a HorizontalPodAutoscaler (kubernetes/autoscaling.ts);
 * - the control-plane token → a Secret every pod reads `ANYSERVE_TOKEN` from (never the ConfigMap
 *   or a command line): the API servers require it, the replicas register with it.
 *
 * A field that cannot be carried over is refused with the reason (kubernetes/refusals.ts's
 * `UNMAPPED`): nothing is dropped silently. What every object shares (labels, metadata, the
 * mounted file, the token's env) is kubernetes/manifest.ts; this file composes the objects.
 *
 * @example
 * ```ts
 * const manifests = renderManifests(readFileSync("anyserve.yaml", "utf8"), { image: "registry.local/my-app:1" });
 * console.log(manifests.map((m) => m.kind)); // ["ConfigMap", "Deployment", "Service", "Service", "Deployment", …]
 * ```
 */
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../../config/errors.js";
import type { ApiServerConfig, ServiceConfig } from "../../config/schema.js";
import { DEPLOYMENT_OBJECT_STORE, parseDeployment } from "../load.js";
import { horizontalPodAutoscaler } from "./autoscaling.js";
import {
  CONFIG_FILE,
  type Ctx,
  configMount,
  configPath,
  configVolume,
  labelsOf,
  type Manifest,
  meta,
  NAME_ENV,
  NAMESPACE_ENV,
  REPLICA_GRPC_PORT,
  REPLICA_HTTP_PORT,
  type RenderOptions,
  renderContext,
  scrapeAnnotations,
  tokenEnv,
} from "./manifest.js";
import { placementOf, resourcesOf } from "./placement.js";
import { apiServerProbes, replicaProbes, terminationGraceSeconds } from "./probes.js";
import { scaleRbac } from "./rbac.js";
import { refuseAutoscaling, refuseUnmapped } from "./refusals.js";

export type { Manifest, RenderOptions } from "./manifest.js";

/** Renders every manifest of a deployment file's text (YAML or JSON). Throws ConfigError for a bad or unmappable file. */
export function renderManifests(text: string, o: RenderOptions): Manifest[] {
  const source = o.source ?? "deployment file";
  const config = parseDeployment(text, source);
  refuseUnmapped(parseYaml(text) as Record<string, unknown>, source);
  refuseAutoscaling(config.services, source);
  const ctx = renderContext(text, o);
  const names = serviceNames(Object.keys(config.services), ctx.prefix, source);
  if (o.token !== undefined && o.tokenSecret !== undefined) {
    throw new ConfigError(source, [{ path: "", message: "give the token or the name of the Secret that holds it, not both" }]);
  }
  const manifests: Manifest[] = [configMap(ctx, text), ...tokenSecret(ctx, o.token), ...apiServer(ctx, config.api_server)];
  for (const [service, cfg] of Object.entries(config.services)) {
    manifests.push(...serviceObjects(ctx, service, names.get(service)!, cfg, config.api_server));
  }
  return manifests;
}

/**
 * The name of service `service`'s Deployment (and PodDisruptionBudget, HPA): `<prefix>-<service>`
 * made DNS-1123 (`kv_service` → `anyserve-kv-service`). The API server pods find the Deployment
 * to scale by it (kubernetes/scale.ts).
 */
export function deploymentName(prefix: string, service: string): string {
  return `${prefix}-${service
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")}`.slice(0, 63);
}

/** DNS-1123 names for the services (`kv_service` → `anyserve-kv-service`), refused when two collide. */
function serviceNames(services: string[], prefix: string, source: string): Map<string, string> {
  const out = new Map<string, string>();
  const taken = new Map<string, string>([[`${prefix}-api`, "the API server"]]);
  for (const s of services) {
    const name = deploymentName(prefix, s);
    const other = taken.get(name);
    if (other !== undefined) {
      throw new ConfigError(source, [{ path: `services.${s}`, message: `its Kubernetes name ${name} is also ${other}'s: rename one` }]);
    }
    taken.set(name, `service ${s}`);
    out.set(s, name);
  }
  return out;
}

function configMap(ctx: Ctx, text: string): Manifest {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta(ctx, `${ctx.prefix}-config`, labelsOf(ctx, "config")),
    data: { [CONFIG_FILE]: text },
  };
}

/** The control-plane token as a Secret (never in the ConfigMap or in args: pods read it from their env). */
function tokenSecret(ctx: Ctx, token: string | undefined): Manifest[] {
  if (token === undefined) return [];
  return [
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: meta(ctx, ctx.tokenSecret, labelsOf(ctx, "token")),
      type: "Opaque",
      data: { token: Buffer.from(token).toString("base64") },
    },
  ];
}

/** The API server: Deployment, Service, headless Service. */
function apiServer(ctx: Ctx, a: ApiServerConfig): Manifest[] {
  const name = `${ctx.prefix}-api`;
  const labels = labelsOf(ctx, "api-server");
  const ports = [
    { name: "http", containerPort: a.port, protocol: "TCP" },
    ...(a.grpc_port !== null ? [{ name: "grpc", containerPort: a.grpc_port, protocol: "TCP" }] : []),
  ];
  const args = ["api-server", "--deployment", configPath(ctx), "--host", "0.0.0.0", "--port", String(a.port)];
  if (a.grpc_port !== null) args.push("--grpc-port", String(a.grpc_port));
  const deployment: Manifest = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(ctx, name, labels),
    spec: {
      replicas: ctx.apiReplicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, annotations: { ...scrapeAnnotations(a.port), "anyserve.dev/config-hash": ctx.configHash } },
        spec: {
          serviceAccountName: name,
          containers: [
            {
              name: "api-server",
              image: ctx.image,
              workingDir: ctx.appDir,
              command: ["anyserve"],
              args,
              env: [
                tokenEnv(ctx),
                // Where it runs, so that POST /api/scale patches the services' Deployments (kubernetes/scale.ts).
                { name: NAMESPACE_ENV, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                { name: NAME_ENV, value: ctx.prefix },
              ],
              ports,
              ...apiServerProbes(),
              volumeMounts: [configMount(ctx)],
            },
          ],
          volumes: [configVolume(ctx)],
        },
      },
    },
  };
  const servicePorts = ports.map((p) => ({ name: p.name, port: p.containerPort, targetPort: p.name, protocol: "TCP" }));
  const service: Manifest = {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(ctx, name, labels),
    spec: { selector: labels, ports: servicePorts },
  };
  // One DNS record per API server pod, ready or not: replicas register with each address (replica/registrations.ts).
  const headless: Manifest = {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(ctx, `${name}-headless`, labels),
    spec: { clusterIP: "None", publishNotReadyAddresses: true, selector: labels, ports: servicePorts },
  };
  return [...scaleRbac(ctx, name, labels), deployment, service, headless];
}

/**
 * One service: its Deployment, a PodDisruptionBudget when it may have more than one replica, and
 * with an `autoscaling` section a HorizontalPodAutoscaler that owns the replica count (the
 * Deployment then has no `replicas`: applying the manifests again must not reset the HPA's choice).
 */
function serviceObjects(ctx: Ctx, service: string, name: string, cfg: ServiceConfig, a: ApiServerConfig): Manifest[] {
  const labels = labelsOf(ctx, "replica", service);
  const d = cfg.deployment;
  const container = {
    name: "replica",
    image: ctx.image,
    workingDir: ctx.appDir,
    command: ["anyserve"],
    args: replicaArgs(ctx, service, a),
    env: [
      { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
      { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      { name: "ANYSERVE_SERVICE", value: service },
      tokenEnv(ctx),
    ],
    ports: [
      { name: "http", containerPort: REPLICA_HTTP_PORT, protocol: "TCP" },
      { name: "grpc", containerPort: REPLICA_GRPC_PORT, protocol: "TCP" },
    ],
    resources: resourcesOf(cfg),
    ...replicaProbes(cfg),
    volumeMounts: [configMount(ctx), { name: "objects", mountPath: objectDir(ctx, cfg) }],
  };
  const deployment: Manifest = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(ctx, name, labels),
    spec: {
      ...(cfg.autoscaling === null ? { replicas: d.replicas } : {}),
      selector: { matchLabels: labels },
      template: {
        metadata: {
          labels,
          annotations: {
            ...(cfg.monitoring.enable_metrics ? scrapeAnnotations(REPLICA_HTTP_PORT) : {}),
            "anyserve.dev/config-hash": ctx.configHash,
          },
        },
        spec: {
          containers: [container],
          volumes: [configVolume(ctx), { name: "objects", emptyDir: {} }],
          terminationGracePeriodSeconds: terminationGraceSeconds(cfg),
          ...placementOf(ctx, d),
        },
      },
    },
  };
  const out: Manifest[] = [deployment];
  if ((cfg.autoscaling === null ? d.replicas : (cfg.autoscaling.max_replicas ?? 1)) > 1) {
    out.push({
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: meta(ctx, name, labels),
      spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
    });
  }
  if (cfg.autoscaling !== null) out.push(horizontalPodAutoscaler(meta(ctx, name, labels), name, cfg.autoscaling));
  return out;
}

function replicaArgs(ctx: Ctx, service: string, a: ApiServerConfig): string[] {
  return [
    "start",
    "--deployment",
    configPath(ctx),
    "--service",
    service,
    "--host",
    "0.0.0.0",
    // Kubernetes expands $(VAR) in args from the container's env.
    "--advertise-host",
    "$(POD_IP)",
    "--node",
    "$(NODE_NAME)",
    "--port",
    String(REPLICA_GRPC_PORT),
    "--http-port",
    String(REPLICA_HTTP_PORT),
    // The headless Service's name resolves to every API server pod: the replica registers with each.
    "--api-server",
    `http://${ctx.prefix}-api-headless:${a.port}`,
  ];
}

/** The object store's directory in the pod: an emptyDir there (objects live as long as the pod). */
function objectDir(ctx: Ctx, cfg: ServiceConfig): string {
  return path.posix.resolve(ctx.appDir, cfg.object_store.dir ?? DEPLOYMENT_OBJECT_STORE);
}
