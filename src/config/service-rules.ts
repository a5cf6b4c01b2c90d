/**
 * The rules of a service's config that span fields (or sections), which no single field's schema
 * can say: pool bounds at least thread_count, max_replicas at least min_replicas, a target's
 * required nodes or labels, a TLS certificate with its key. schema.ts runs them on every service,
 * even when other fields failed, so every problem is reported at once.
 *
 * @example
 * ```ts
 * const serviceSchema = z.strictObject({ ... }).check(z.superRefine(crossFieldRules, { when: () => true }));
 * ```
 */

type Issue = { code: "custom"; path: PropertyKey[]; input: unknown; message: string };

/** Adds an issue to `ctx` for each rule the raw service config `raw` breaks. */
export function crossFieldRules(raw: unknown, ctx: { addIssue(issue: Issue): void }): void {
  const section = (k: string): Record<string, unknown> => {
    const v = raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>)[k] : undefined;
    return v !== null && typeof v === "object" ? (v as Record<string, unknown>) : {};
  };
  const d = section("deployment");
  const count = typeof d.thread_count === "number" ? d.thread_count : 1;
  for (const key of ["max_thread_count", "thread_pool_size"]) {
    const v = d[key];
    if (typeof v === "number" && v < count) {
      ctx.addIssue({ code: "custom", path: ["deployment", key], input: v, message: `must be at least thread_count (${count})` });
    }
  }
  const a = section("autoscaling");
  if (typeof a.max_replicas === "number" && a.max_replicas < (typeof a.min_replicas === "number" ? a.min_replicas : 1)) {
    ctx.addIssue({
      code: "custom",
      path: ["autoscaling", "max_replicas"],
      input: a.max_replicas,
      message: `must be at least min_replicas (${typeof a.min_replicas === "number" ? a.min_replicas : 1})`,
    });
  }
  const nodes = d.target_nodes;
  if (d.target === "remote_specific" && (!Array.isArray(nodes) || nodes.length === 0)) {
    ctx.addIssue({
      code: "custom",
      path: ["deployment", "target_nodes"],
      input: nodes ?? null,
      message: "target remote_specific needs at least one node name",
    });
  }
  const t = section("tls");
  if ((typeof t.cert === "string") !== (typeof t.key === "string")) {
    ctx.addIssue({
      code: "custom",
      path: ["tls", typeof t.cert === "string" ? "key" : "cert"],
      input: null,
      message: "tls.cert and tls.key go together: give both or neither",
    });
  }
  if (d.target === "cluster_group" && (d.node_selector === undefined || d.node_selector === null)) {
    ctx.addIssue({
      code: "custom",
      path: ["deployment", "node_selector"],
      input: null,
      message: "target cluster_group needs a node_selector (labels of the group)",
    });
  }
}
