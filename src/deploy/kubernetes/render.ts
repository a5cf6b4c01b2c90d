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
 *   `POST /api/scale` on any API server pod scales a service (kubernetes/scale.ts);
 * - each service → a Deployment (and a PodDisruptionBudget when replicas > 1) whose pods bind
 *   0.0.0.0 and advertise their pod IP (`--advertise-host $(POD_IP)`); its `autoscaling` section →
 *   a HorizontalPodAutoscaler (kubernetes/autoscaling.ts);
 * - the control-plane token → a Secret every pod reads `ANYSERVE_TOKEN` from (never the ConfigMap
 *   or a command line): the API servers require it, the replicas register with it.
 *
 * A field that cannot be carried over is refused with the reason ({@link UNMAPPED}): nothing is
 * dropped silently.
 *
 * @example
 * ```ts
 * const manifests = renderManifests(readFileSync("anyserve.yaml", "utf8"), { image: "registry.local/my-app:1" });
 * console.log(manifests.map((m) => m.kind)); // ["ConfigMap", "Deployment", "Service", "Service", "Deployment", …]
 * ```
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError, type ConfigIssue } from "../../config/errors.js";
import type { ApiServerConfig, ServiceConfig } from "../../config/schema.js";
import { DEPLOYMENT_OBJECT_STORE, parseDeployment } from "../load.js";
import { autoscalingRefusals, horizontalPodAutoscaler } from "./autoscaling.js";

export interface RenderOptions {
  /** The app image (built from the Dockerfile `anyserve k8s dockerfile` prints). */
  image: string;
  /** Namespace of every object (default: none, the one kubectl or apply uses). */
  namespace?: string;
  /** Prefix of every object's name and the `app.kubernetes.io/instance` label (default `anyserve`). */
  name?: string;
  /** Where the app (and so the deployment file) is inside the image (default `/app`). */
  appDir?: string;
  /** API server pods (default 2: no single point of failure; every replica registers with each). */
  apiReplicas?: number;
  /** The deployment file's name, for errors. */
  source?: string;
  /**
   * The control-plane token, rendered as the Secret `<name>-token` (key `token`) that every pod
   * reads `ANYSERVE_TOKEN` from (`anyserve k8s render` passes the deployment's token file, as `up` uses).
   */
  token?: string;
  /**
   * An existing Secret holding the token under key `token`: referenced, not rendered (for manifests
   * kept in a repository). With neither option the pods reference `<name>-token`, which must exist:
   * they never run without a token.
   */
  tokenSecret?: string;
}

/** A Kubernetes object as plain JSON. */
export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
} & Record<string, unknown>;

/** The replica's ports inside its pod (fixed: each pod has its own IP). */
export const REPLICA_HTTP_PORT = 8000;
export const REPLICA_GRPC_PORT = 50051;
/** What the API server pods are told of where they run (kubernetes/scale.ts reads them): the pod's namespace, the objects' name prefix. */
export const NAMESPACE_ENV = "ANYSERVE_KUBERNETES_NAMESPACE";
export const NAME_ENV = "ANYSERVE_KUBERNETES_NAME";
/** Where the ConfigMap's file is mounted, relative to the app directory. */
export const CONFIG_FILE = "anyserve.yaml";
/** Seconds a replica may take to drain on SIGTERM before it stops waiting (replica.ts's default drain). */
const DRAIN_SECONDS = 30;

/**
 * Fields of the deployment file with no counterpart in Kubernetes (as rendered today), with why.
 * A file that sets one is refused.
 */
export const UNMAPPED: Record<string, string> = {
  node: "describes the one machine `up` runs on (its name, labels and capacity); in Kubernetes the nodes are the cluster's — label them and use deployment.node_selector or target_nodes",
  "api_server.tls_cert": "a certificate file: mount it from a Secret (not rendered yet)",
  "api_server.tls_key": "a key file: mount it from a Secret (not rendered yet)",
  "api_server.tls_ca": "a CA file: mount it from a Secret (not rendered yet)",
  "services.*.tls": "certificate files: mount them from a Secret (not rendered yet)",
};

/** Renders every manifest of a deployment file's text (YAML or JSON). Throws ConfigError for a bad or unmappable file. */
export function renderManifests(text: string, o: RenderOptions): Manifest[] {
  const source = o.source ?? "deployment file";
  const config = parseDeployment(text, source);
  refuseUnmapped(parseYaml(text) as Record<string, unknown>, source);
  refuseAutoscaling(config.services, source);
  const ctx = context(text, o);
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

interface Ctx {
  prefix: string;
  namespace: string | undefined;
  image: string;
  appDir: string;
  apiReplicas: number;
  /** The Secret the pods read the control-plane token from (key `token`). */
  tokenSecret: string;
  /** Changes when the file does: pods roll when the deployment file changes (the mount alone would not restart them). */
  configHash: string;
}

function context(text: string, o: RenderOptions): Ctx {
  return {
    prefix: o.name ?? "anyserve",
    namespace: o.namespace,
    image: o.image,
    appDir: o.appDir ?? "/app",
    apiReplicas: o.apiReplicas ?? 2,
    tokenSecret: o.tokenSecret ?? `${o.name ?? "anyserve"}-token`,
    configHash: createHash("sha256").update(text).digest("hex").slice(0, 16),
  };
}

function refuseUnmapped(raw: Record<string, unknown>, source: string): void {
  const issues: ConfigIssue[] = [];
  const refuse = (p: string, why: string) => issues.push({ path: p, message: `cannot be carried over to Kubernetes: ${why}` });
  if (raw.node !== undefined) refuse("node", UNMAPPED.node!);
  const api = (raw.api_server ?? {}) as Record<string, unknown>;
  for (const k of ["tls_cert", "tls_key", "tls_ca"]) if (api[k] != null) refuse(`api_server.${k}`, UNMAPPED[`api_server.${k}`]!);
  for (const [name, s] of Object.entries((raw.services ?? {}) as Record<string, Record<string, unknown>>)) {
    const tls = s?.tls as Record<string, unknown> | undefined;
    if (tls && Object.values(tls).some((v) => v != null)) refuse(`services.${name}.tls`, UNMAPPED["services.*.tls"]!);
  }
  if (issues.length > 0) throw new ConfigError(source, issues);
}

/** Autoscaling sections an HPA cannot carry (kubernetes/autoscaling.ts says why). */
function refuseAutoscaling(services: Record<string, ServiceConfig>, source: string): void {
  const issues: ConfigIssue[] = [];
  for (const [name, s] of Object.entries(services)) {
    if (s.autoscaling === null) continue;
    for (const [field, why] of autoscalingRefusals(s.autoscaling)) {
      issues.push({ path: `services.${name}.autoscaling.${field}`, message: `cannot be carried over to Kubernetes: ${why}` });
    }
  }
  if (issues.length > 0) throw new ConfigError(source, issues);
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

const labelsOf = (ctx: Ctx, component: string, service?: string): Record<string, string> => ({
  "app.kubernetes.io/name": "anyserve",
  "app.kubernetes.io/instance": ctx.prefix,
  "app.kubernetes.io/component": component,
  ...(service !== undefined ? { "anyserve.dev/service": service.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 63) } : {}),
});

const meta = (ctx: Ctx, name: string, labels: Record<string, string>) => ({
  name,
  ...(ctx.namespace !== undefined ? { namespace: ctx.namespace } : {}),
  labels,
});

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

/** `ANYSERVE_TOKEN` from the Secret: `anyserve api-server` requires it on control routes, `anyserve start` registers with it. */
const tokenEnv = (ctx: Ctx) => ({ name: "ANYSERVE_TOKEN", valueFrom: { secretKeyRef: { name: ctx.tokenSecret, key: "token" } } });

/** The ConfigMap's file, mounted over `<appDir>/anyserve.yaml` so paths in it resolve against the app. */
const configVolume = (ctx: Ctx) => ({ name: "deployment-file", configMap: { name: `${ctx.prefix}-config` } });
const configMount = (ctx: Ctx) => ({
  name: "deployment-file",
  mountPath: path.posix.join(ctx.appDir, CONFIG_FILE),
  subPath: CONFIG_FILE,
  readOnly: true,
});

/** The API server: Deployment, Service, headless Service. */
function apiServer(ctx: Ctx, a: ApiServerConfig): Manifest[] {
  const name = `${ctx.prefix}-api`;
  const labels = labelsOf(ctx, "api-server");
  const ports = [
    { name: "http", containerPort: a.port, protocol: "TCP" },
    ...(a.grpc_port !== null ? [{ name: "grpc", containerPort: a.grpc_port, protocol: "TCP" }] : []),
  ];
  const args = ["api-server", "--deployment", path.posix.join(ctx.appDir, CONFIG_FILE), "--host", "0.0.0.0", "--port", String(a.port)];
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
              readinessProbe: { httpGet: { path: "/v2/health/ready", port: "http" }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: "/v2/health/live", port: "http" }, periodSeconds: 10 },
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
 * The API server pods' identity: a ServiceAccount, and a Role (bound to it) that allows exactly
 * `get` and `patch` on `deployments/scale` in the namespace — what `POST /api/scale` needs
 * (kubernetes/scale.ts), nothing else: not the Deployments themselves, not pods, not Secrets.
 */
function scaleRbac(ctx: Ctx, name: string, labels: Record<string, string>): Manifest[] {
  const scaleRole = `${name}-scale`;
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(ctx, name, labels) },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(ctx, scaleRole, labels),
      rules: [{ apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["get", "patch"] }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(ctx, scaleRole, labels),
      // Without a namespace a RoleBinding's ServiceAccount is the one of the binding's own namespace.
      subjects: [{ kind: "ServiceAccount", name, ...(ctx.namespace !== undefined ? { namespace: ctx.namespace } : {}) }],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: scaleRole },
    },
  ];
}

const scrapeAnnotations = (port: number) => ({
  "prometheus.io/scrape": "true",
  "prometheus.io/port": String(port),
  "prometheus.io/path": "/metrics",
});

/**
 * One service: its Deployment, a PodDisruptionBudget when it may have more than one replica, and
 * with an `autoscaling` section a HorizontalPodAutoscaler that owns the replica count (the
 * Deployment then has no `replicas`: applying the manifests again must not reset the HPA's choice).
 */
function serviceObjects(ctx: Ctx, service: string, name: string, cfg: ServiceConfig, a: ApiServerConfig): Manifest[] {
  const labels = labelsOf(ctx, "replica", service);
  const d = cfg.deployment;
  const interval = cfg.monitoring.health_check_interval;
  const probePeriod = Math.max(1, Math.round(interval));
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
    readinessProbe: { httpGet: { path: "/v2/health/ready", port: "http" }, periodSeconds: probePeriod },
    livenessProbe: {
      httpGet: { path: "/v2/health/live", port: "http" },
      periodSeconds: probePeriod,
      // unhealthy_restart_after: how long a replica may stay unhealthy before it is replaced.
      failureThreshold: Math.max(1, Math.ceil((cfg.monitoring.unhealthy_restart_after ?? 3 * probePeriod) / probePeriod)),
    },
    // The drain is the replica's own on SIGTERM (unregisters, waits for the API servers' frame
    // connections to close, finishes what it has); the hook only pauses a heartbeat interval first.
    lifecycle: { preStop: { exec: { command: ["sleep", String(Math.max(1, Math.ceil(interval)))] } } },
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
          // Longer than the preStop wait plus the drain (which waits for requests up to their timeout).
          terminationGracePeriodSeconds: Math.ceil(interval) + Math.max(DRAIN_SECONDS, Math.ceil(cfg.performance.timeout)) + 10,
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
    path.posix.join(ctx.appDir, CONFIG_FILE),
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

/** cpu_cores, memory_mb, gpu_count → requests and limits (equal: the replica gets what it asked for, no more). */
function resourcesOf(cfg: ServiceConfig): Record<string, Record<string, string>> {
  const r = cfg.resources;
  const both: Record<string, string> = {};
  if (r.cpu_cores !== null) both.cpu = `${Math.round(r.cpu_cores * 1000)}m`;
  if (r.memory_mb !== null) both.memory = `${r.memory_mb}Mi`;
  const limits: Record<string, string> = { ...both };
  if ((r.gpu_count ?? 0) > 0) limits["nvidia.com/gpu"] = String(r.gpu_count);
  return { ...(Object.keys(both).length > 0 ? { requests: both } : {}), ...(Object.keys(limits).length > 0 ? { limits } : {}) };
}

/**
 * target / target_nodes / node_selector → where pods may run:
 * remote_specific → required node affinity on kubernetes.io/hostname; node_selector (and so
 * cluster_group) → nodeSelector; local → required pod affinity to the API server's pods on the same
 * hostname (co-located with it, as `up` runs `local` services beside its API server);
 * remote_any → no constraint.
 */
function placementOf(ctx: Ctx, d: ServiceConfig["deployment"]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (d.node_selector !== null) out.nodeSelector = { ...d.node_selector };
  const affinity: Record<string, unknown> = {};
  if (d.target_nodes !== null && d.target_nodes.length > 0) {
    affinity.nodeAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [...d.target_nodes] }] }],
      },
    };
  }
  if (d.target === "local") {
    affinity.podAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: labelsOf(ctx, "api-server") }, topologyKey: "kubernetes.io/hostname" },
      ],
    };
  }
  if (Object.keys(affinity).length > 0) out.affinity = affinity;
  return out;
}

/** The app image: Node, the app and its dependencies (anyserve among them), `anyserve` on the PATH. */
export function dockerfile(o: { appDir?: string } = {}): string {
  const dir = o.appDir ?? "/app";
  return `# The app image for anyserve on Kubernetes (anyserve k8s dockerfile > Dockerfile).
# Build it from the app's directory, whose package.json depends on anyserve.
FROM node:20-slim
WORKDIR ${dir}
COPY package*.json ./
RUN npm ci --omit=dev || npm install --omit=dev
COPY . .
ENV PATH=${dir}/node_modules/.bin:$PATH NODE_ENV=production
# The command and arguments come from the rendered manifests (anyserve api-server / anyserve start).
ENTRYPOINT []
`;
}
