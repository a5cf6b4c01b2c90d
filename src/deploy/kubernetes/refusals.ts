/**
 * What of a deployment file cannot be carried over to Kubernetes, refused with the reason before
 * anything is rendered: nothing is dropped silently. {@link UNMAPPED} is the table (docs/scale-out.md
 * has it too); autoscaling sections an HPA cannot carry are kubernetes/autoscaling.ts's to say.
 *
 * @example
 * ```ts
 * refuseUnmapped(parseYaml(text), "anyserve.yaml"); // throws ConfigError naming `node` when the file sets it
 * ```
 */
import { ConfigError, type ConfigIssue } from "../../config/errors.js";
import type { ServiceConfig } from "../../config/schema.js";
import { autoscalingRefusals } from "./autoscaling.js";

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

const refusal = (why: string) => `cannot be carried over to Kubernetes: ${why}`;

/** Refuses the {@link UNMAPPED} fields `raw` (the file as written, before defaults) sets. */
export function refuseUnmapped(raw: Record<string, unknown>, source: string): void {
  const issues: ConfigIssue[] = [];
  const refuse = (p: string, why: string) => issues.push({ path: p, message: refusal(why) });
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
export function refuseAutoscaling(services: Record<string, ServiceConfig>, source: string): void {
  const issues: ConfigIssue[] = [];
  for (const [name, s] of Object.entries(services)) {
    if (s.autoscaling === null) continue;
    for (const [field, why] of autoscalingRefusals(s.autoscaling)) {
      issues.push({ path: `services.${name}.autoscaling.${field}`, message: refusal(why) });
    }
  }
  if (issues.length > 0) throw new ConfigError(source, issues);
}
