/**
 * The API server pods' identity on Kubernetes: a ServiceAccount, and a Role (bound to it) that
 * allows exactly `get` and `patch` on `deployments/scale` in the namespace — what `POST /api/scale`
 * needs (kubernetes/scale.ts), nothing else: not the Deployments themselves, not pods, not Secrets.
 *
 * @example
 * ```ts
 * const [account, role, binding] = scaleRbac(ctx, "anyserve-api", labelsOf(ctx, "api-server"));
 * ```
 */
import { type Ctx, type Manifest, meta } from "./manifest.js";

/** ServiceAccount `name`, Role and RoleBinding `<name>-scale`. */
export function scaleRbac(ctx: Ctx, name: string, labels: Record<string, string>): Manifest[] {
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
