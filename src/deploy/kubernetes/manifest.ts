/**
 * What every rendered object shares (render.ts composes them): the {@link Manifest} shape, the
 * render context, the labels and metadata of each object, and the pieces every pod has — the
 * deployment file mounted from the ConfigMap, `ANYSERVE_TOKEN` from the Secret, the scrape
 * annotations.
 *
 * @example
 * ```ts
 * const ctx = renderContext(text, { image: "registry.local/my-app:1" });
 * const m: Manifest = { apiVersion: "v1", kind: "ConfigMap", metadata: meta(ctx, "x", labelsOf(ctx, "config")) };
 * ```
 */
import { createHash } from "node:crypto";
import path from "node:path";

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

/** The render options with their defaults, and what is derived from the file once. */
export interface Ctx {
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

export function renderContext(text: string, o: RenderOptions): Ctx {
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

export const labelsOf = (ctx: Ctx, component: string, service?: string): Record<string, string> => ({
  "app.kubernetes.io/name": "anyserve",
  "app.kubernetes.io/instance": ctx.prefix,
  "app.kubernetes.io/component": component,
  ...(service !== undefined ? { "anyserve.dev/service": service.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 63) } : {}),
});

export const meta = (ctx: Ctx, name: string, labels: Record<string, string>) => ({
  name,
  ...(ctx.namespace !== undefined ? { namespace: ctx.namespace } : {}),
  labels,
});

/** `ANYSERVE_TOKEN` from the Secret: `anyserve api-server` requires it on control routes, `anyserve start` registers with it. */
export const tokenEnv = (ctx: Ctx) => ({ name: "ANYSERVE_TOKEN", valueFrom: { secretKeyRef: { name: ctx.tokenSecret, key: "token" } } });

/** The deployment file's path inside a pod (what `--deployment` is given). */
export const configPath = (ctx: Ctx) => path.posix.join(ctx.appDir, CONFIG_FILE);

/** The ConfigMap's file, mounted over `<appDir>/anyserve.yaml` so paths in it resolve against the app. */
export const configVolume = (ctx: Ctx) => ({ name: "deployment-file", configMap: { name: `${ctx.prefix}-config` } });
export const configMount = (ctx: Ctx) => ({
  name: "deployment-file",
  mountPath: configPath(ctx),
  subPath: CONFIG_FILE,
  readOnly: true,
});

export const scrapeAnnotations = (port: number) => ({
  "prometheus.io/scrape": "true",
  "prometheus.io/port": String(port),
  "prometheus.io/path": "/metrics",
});
