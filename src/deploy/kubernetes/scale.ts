/**
 * `POST /api/scale` on an API server pod of a cluster rendered by `anyserve k8s render`: Kubernetes
 * is the controller there, so a scale is a patch of the service's Deployment's `scale`
 * subresource — what `kubectl scale` sends — through `@kubernetes/client-node`, with the pod's
 * service account (the rendered Role allows exactly `get` and `patch` on `deployments/scale` in
 * the namespace). The Deployment controller then starts or stops pods; each new replica registers
 * with every API server pod.
 *
 * The rendered API server Deployment says where it runs in its environment
 * ({@link kubernetesPlacement}): `ANYSERVE_KUBERNETES_NAMESPACE` (the pod's namespace, from the
 * downward API) and `ANYSERVE_KUBERNETES_NAME` (the object-name prefix, `--name` of render); the
 * Deployment of service `kv_service` is then `<name>-kv-service` (render.ts's `deploymentName`).
 * The cluster's API comes from the in-cluster config (the service account's token and CA), or
 * `$KUBECONFIG` when that is set (an API server run outside the cluster; the tests' stand-in).
 *
 * As under `up`, an autoscaled service is refused (its HorizontalPodAutoscaler owns the count) and
 * a service not in the deployment file is refused; the count's bounds are the file's
 * (`deployment.replicas`, checked by the route).
 *
 * @example
 * ```ts
 * const where = kubernetesPlacement(process.env); // undefined outside a rendered cluster
 * if (where) await new KubernetesScaler({ ...where, file }).scale("kv_service", 3);
 * ```
 */
import type { AppsV1Api } from "@kubernetes/client-node";
import { AnyServeError } from "../../errors.js";
import type { DeploymentFile } from "../../config/schema.js";
import { NAME_ENV, NAMESPACE_ENV } from "./manifest.js";
import { deploymentName } from "./render.js";

export { NAME_ENV, NAMESPACE_ENV };

/** Where a rendered API server pod runs, from its environment. */
export interface KubernetesPlacement {
  namespace: string;
  /** The prefix of the rendered objects' names (`anyserve k8s render --name`, default `anyserve`). */
  name: string;
}

/** The placement the rendered manifest put in `env`; undefined when this API server is not such a pod. */
export function kubernetesPlacement(env: NodeJS.ProcessEnv): KubernetesPlacement | undefined {
  const namespace = env[NAMESPACE_ENV];
  if (!namespace) return undefined;
  return { namespace, name: env[NAME_ENV] || "anyserve" };
}

export class KubernetesScaler {
  readonly #o: KubernetesPlacement & { file: DeploymentFile };
  #api: Promise<AppsV1Api> | undefined;

  constructor(o: KubernetesPlacement & { file: DeploymentFile }) {
    this.#o = o;
  }

  /** Patches service `service`'s Deployment to `replicas`; answers what `up`'s scale answers, per service. */
  async scale(service: string, replicas: number): Promise<Record<string, unknown>> {
    const cfg = this.#o.file.services[service];
    if (!cfg) {
      const known = Object.keys(this.#o.file.services);
      throw new AnyServeError(
        "CONFIG_INVALID",
        `no service '${service}' is deployed: the deployment file has ${known.join(", ") || "none"}`,
      );
    }
    if (cfg.autoscaling !== null) {
      const a = cfg.autoscaling;
      throw new AnyServeError(
        "CONFIG_INVALID",
        `service '${service}' is autoscaled (min_replicas ${a.min_replicas}, max_replicas ${a.max_replicas}): its HorizontalPodAutoscaler owns the count; change autoscaling.min_replicas / max_replicas and apply the file instead of scaling it by hand`,
      );
    }
    const { namespace } = this.#o;
    const name = deploymentName(this.#o.name, service);
    const k8s = await import("@kubernetes/client-node");
    const api = await (this.#api ??= this.#connect());
    const scale = await api
      .patchNamespacedDeploymentScale(
        { name, namespace, body: { spec: { replicas } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      )
      .catch((err: unknown) => {
        throw refused(`deployment/${name} in namespace ${namespace}`, err);
      });
    return { [service]: { deployment: name, namespace, replicas: scale.spec?.replicas ?? replicas } };
  }

  /** The client is loaded on the first scale only (it is large). */
  async #connect(): Promise<AppsV1Api> {
    const k8s = await import("@kubernetes/client-node");
    const kc = new k8s.KubeConfig();
    if (process.env.KUBECONFIG) kc.loadFromFile(process.env.KUBECONFIG);
    else kc.loadFromCluster();
    return kc.makeApiClient(k8s.AppsV1Api);
  }
}

/** The Kubernetes API's refusal (or why it could not be reached) as CONTROLLER_UNAVAILABLE, quoting its answer. */
function refused(what: string, err: unknown): AnyServeError {
  const e = err as { code?: unknown; body?: unknown; message?: string };
  const status = typeof e.code === "number" ? `HTTP ${e.code}` : "no answer";
  let said = e.message ?? String(err);
  if (typeof e.body === "string") {
    try {
      said = (JSON.parse(e.body) as { message?: string }).message ?? e.body;
    } catch {
      said = e.body;
    }
  }
  return new AnyServeError(
    "CONTROLLER_UNAVAILABLE",
    `the Kubernetes API did not scale ${what}: ${status}: ${said.slice(0, 300)}; nothing was changed`,
  );
}
