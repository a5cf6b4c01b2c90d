/**
 * `anyserve k8s apply` / `delete`: the rendered manifests sent to a cluster with server-side apply
 * (`application/apply-patch+yaml`, field manager `anyserve`, conflicts forced: this deployment
 * file owns these fields) through `@kubernetes/client-node`, then every Deployment waited on until
 * rolled out, printing progress. The client is loaded only by these commands (it is large).
 * The cluster comes from the usual kubeconfig (`$KUBECONFIG`, `~/.kube/config`, or in-cluster).
 *
 * @example
 * ```ts
 * await applyManifests(renderManifests(text, { image }), { onProgress: console.log });
 * ```
 */
import type { KubernetesObject, KubernetesObjectApi } from "@kubernetes/client-node";
import type { Manifest } from "./manifest.js";

export interface ApplyOptions {
  /** A kubeconfig file (default: `$KUBECONFIG`, `~/.kube/config`, or the pod's service account). */
  kubeconfig?: string;
  /** Wait for every Deployment to roll out (default true). */
  wait?: boolean;
  /** How long to wait for rollouts, ms (default 5 minutes). */
  timeoutMs?: number;
  /** Between rollout checks, ms (default 2 s). */
  pollMs?: number;
  onProgress?: (line: string) => void;
}

const FIELD_MANAGER = "anyserve";

async function client(kubeconfig: string | undefined): Promise<{ api: KubernetesObjectApi; namespace: string }> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  if (kubeconfig !== undefined) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  return { api: k8s.KubernetesObjectApi.makeApiClient(kc), namespace };
}

const nameOf = (m: Manifest) => `${m.kind.toLowerCase()}/${m.metadata.name}`;

/** Server-side applies every manifest in order, then (unless `wait: false`) waits for the Deployments' rollouts. */
export async function applyManifests(manifests: Manifest[], o: ApplyOptions = {}): Promise<void> {
  const { api, namespace } = await client(o.kubeconfig);
  const say = o.onProgress ?? (() => undefined);
  const { PatchStrategy } = await import("@kubernetes/client-node");
  const placed = manifests.map((m) => ({ ...m, metadata: { ...m.metadata, namespace: m.metadata.namespace ?? namespace } }));
  for (const m of placed) {
    await api.patch(m as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    say(`${nameOf(m)} applied`);
  }
  if (o.wait === false) return;
  const deadline = Date.now() + (o.timeoutMs ?? 300_000);
  const pending = placed.filter((m) => m.kind === "Deployment");
  while (pending.length > 0) {
    for (let i = pending.length - 1; i >= 0; i--) {
      const m = pending[i]!;
      const now = (await api.read({
        apiVersion: m.apiVersion,
        kind: m.kind,
        metadata: { name: m.metadata.name, namespace: m.metadata.namespace },
      })) as Rollout;
      const line = rolloutState(now);
      say(`${nameOf(m)}: ${line.text}`);
      if (line.done) pending.splice(i, 1);
    }
    if (pending.length === 0) break;
    if (Date.now() > deadline)
      throw new Error(`not rolled out in ${Math.round((o.timeoutMs ?? 300_000) / 1000)} s: ${pending.map(nameOf).join(", ")}`);
    await new Promise((r) => setTimeout(r, o.pollMs ?? 2_000));
  }
  say("rolled out");
}

/** Deletes every manifest (last first); ones already gone are skipped. */
export async function deleteManifests(manifests: Manifest[], o: Pick<ApplyOptions, "kubeconfig" | "onProgress"> = {}): Promise<void> {
  const { api, namespace } = await client(o.kubeconfig);
  const say = o.onProgress ?? (() => undefined);
  for (const m of [...manifests].reverse()) {
    const header = {
      apiVersion: m.apiVersion,
      kind: m.kind,
      metadata: { name: m.metadata.name, namespace: m.metadata.namespace ?? namespace },
    };
    try {
      await api.delete(header);
      say(`${nameOf(m)} deleted`);
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      say(`${nameOf(m)} not found`);
    }
  }
}

interface Rollout {
  metadata?: { generation?: number };
  spec?: { replicas?: number };
  status?: { observedGeneration?: number; replicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

/** As `kubectl rollout status` decides: the controller saw this generation, and every wanted replica is updated and available. */
export function rolloutState(d: Rollout): { done: boolean; text: string } {
  const want = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  if ((s.observedGeneration ?? 0) < (d.metadata?.generation ?? 0))
    return { done: false, text: "waiting for the controller to see the change" };
  const updated = s.updatedReplicas ?? 0;
  const available = s.availableReplicas ?? 0;
  const done = updated >= want && available >= want && (s.replicas ?? 0) <= want;
  return { done, text: `${updated}/${want} updated, ${available}/${want} available${done ? ": rolled out" : ""}` };
}
