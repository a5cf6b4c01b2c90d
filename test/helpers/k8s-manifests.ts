// The rendered manifests as Kubernetes' published schemas type them (kubernetes-models), for the
// tests of `anyserve k8s render` to read without `any`.
import assert from "node:assert/strict";
import type { IDeployment } from "kubernetes-models/apps/v1";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1";
import type { IRole, IRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import type { IConfigMap, ISecret, IService, IServiceAccount } from "kubernetes-models/v1";
import type { Manifest } from "../../src/deploy/kubernetes/render.js";

/** The kinds `renderManifests` emits, by name. */
export interface Kinds {
  ConfigMap: IConfigMap;
  Secret: ISecret;
  Service: IService;
  ServiceAccount: IServiceAccount;
  Role: IRole;
  RoleBinding: IRoleBinding;
  Deployment: IDeployment;
  PodDisruptionBudget: IPodDisruptionBudget;
  HorizontalPodAutoscaler: IHorizontalPodAutoscaler;
}

/**
 * A rendered object with every optional field of its schema made present: the tests read the
 * fields the renderer sets, and one it left out reads `undefined` and fails the assertion that
 * reads it (list elements stay possibly absent, as `noUncheckedIndexedAccess` has them).
 */
export type Rendered<T> = T extends string | number | boolean
  ? T
  : T extends readonly (infer U)[]
    ? Rendered<U>[]
    : T extends object
      ? { [K in keyof T]-?: Rendered<Exclude<T[K], undefined>> }
      : T;

/** The manifest of `kind` named `name`; fails the test, listing what there is, when none is. */
export function findManifest<K extends keyof Kinds>(ms: Manifest[], kind: K, name: string): Rendered<Kinds[K]> {
  const m = ms.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(m, `${kind} ${name} in ${ms.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")}`);
  return m as unknown as Rendered<Kinds[K]>;
}

/** The pod template's spec of Deployment `name`. */
export const podSpecOf = (ms: Manifest[], name: string) => findManifest(ms, "Deployment", name).spec.template.spec;

/** The (one) container of Deployment `name`'s pods. */
export function containerOf(ms: Manifest[], name: string) {
  const c = podSpecOf(ms, name).containers[0];
  assert.ok(c, `Deployment ${name} has a container`);
  return c;
}

export type RenderedPodSpec = ReturnType<typeof podSpecOf>;
export type RenderedContainer = ReturnType<typeof containerOf>;
