/**
 * `anyserve k8s render FILE`: the deployment file as Kubernetes manifests (multi-document YAML on
 * stdout, for `kubectl apply -f -` or a GitOps repository); `k8s apply FILE` / `k8s delete FILE`:
 * the same manifests sent to (removed from) the cluster; `anyserve k8s dockerfile`: the app
 * image's Dockerfile. The mapping is `src/deploy/kubernetes/render.ts`'s (docs/scale-out.md).
 * The pods get the deployment's control-plane token from a Secret (see {@link tokenOf}).
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { stringify } from "yaml";
import { ConfigError } from "../config/errors.js";
import { dockerfile } from "../deploy/kubernetes/dockerfile.js";
import { type Manifest, renderManifests } from "../deploy/kubernetes/render.js";
import { intOption, secondsOption } from "./common.js";
import { readOrCreateToken, readToken, tokenFileOf } from "./credentials.js";

export function registerK8sCommand(program: Command): void {
  const k8s = program.command("k8s").description("Kubernetes: render a deployment file as manifests, print the app image's Dockerfile");
  withRenderFlags(
    k8s.command("render <file>").description("print the deployment file as Kubernetes manifests (multi-document YAML)"),
  ).action(async (file: string, o: RenderFlags) => {
    const manifests = await renderFile(file, o, "render");
    if (manifests) process.stdout.write(manifests.map((m) => stringify(m, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n"));
  });
  for (const action of ["apply", "delete"] as const) {
    withRenderFlags(
      k8s
        .command(`${action} <file>`)
        .description(
          action === "apply"
            ? "render the deployment file and send it to the cluster (server-side apply), then wait for the rollout, printing progress"
            : "delete what `k8s apply` made for this deployment file",
        ),
    )
      .option("--kubeconfig <file>", "kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
      .option("--no-wait", "apply: do not wait for the rollout")
      .option("--timeout <seconds>", "apply: how long to wait for the rollout", secondsOption("--timeout"), 300)
      .action(async (file: string, o: RenderFlags & { kubeconfig?: string; wait: boolean; timeout: number }) => {
        const manifests = await renderFile(file, o, action);
        if (!manifests) return;
        const { applyManifests, deleteManifests } = await import("../deploy/kubernetes/apply.js");
        const onProgress = (line: string) => process.stdout.write(`${line}\n`);
        const k = o.kubeconfig !== undefined ? { kubeconfig: o.kubeconfig } : {};
        try {
          if (action === "apply") await applyManifests(manifests, { ...k, wait: o.wait, timeoutMs: o.timeout * 1000, onProgress });
          else await deleteManifests(manifests, { ...k, onProgress });
        } catch (err) {
          process.stderr.write(`k8s ${action}: ${(err as Error).message}\n`);
          process.exitCode = 1;
        }
      });
  }
  k8s
    .command("dockerfile")
    .description("print the Dockerfile of the app image the manifests run")
    .option("--app-dir <dir>", "where the app goes inside the image", "/app")
    .action((o: { appDir: string }) => {
      process.stdout.write(dockerfile(o));
    });
}

interface RenderFlags {
  image: string;
  namespace?: string;
  name: string;
  appDir: string;
  apiReplicas: number;
  tokenSecret?: string;
  tokenFile?: string;
}

/**
 * Where the pods' control-plane token comes from: `--token-secret NAME` (an existing Secret,
 * referenced), else the deployment's token file — the one `up`, `status` and `apply` use,
 * `.anyserve/token` beside FILE or `--token-file`, made on first use — rendered as a Secret.
 * `delete` makes no token file: it only needs the Secret's name.
 */
function tokenOf(file: string, o: RenderFlags, action: "render" | "apply" | "delete"): { token?: string; tokenSecret?: string } {
  if (o.tokenSecret !== undefined) return { tokenSecret: o.tokenSecret };
  const tokenFile = o.tokenFile ?? tokenFileOf(file);
  try {
    if (action === "delete") return { token: readToken(tokenFile) ?? "" };
    const { token, created, warning } = readOrCreateToken(tokenFile);
    if (warning) process.stderr.write(`${warning}\n`);
    if (created) process.stderr.write(`control-plane token made in ${tokenFile} (rendered as a Secret; keep the file)\n`);
    return { token };
  } catch (err) {
    throw new ConfigError(file, [{ path: "", message: `the control-plane token: ${(err as Error).message}` }]);
  }
}

/** The file's manifests, or undefined after printing why it cannot be rendered (exit code 2). */
async function renderFile(file: string, o: RenderFlags, action: "render" | "apply" | "delete"): Promise<Manifest[] | undefined> {
  try {
    const text = await readFile(file, "utf8").catch((err: Error) => {
      throw new ConfigError(file, [{ path: "", message: `cannot read the file: ${err.message}` }]);
    });
    const { tokenFile: _, ...flags } = o;
    return renderManifests(text, { source: file, ...flags, ...tokenOf(file, o, action) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 2;
    return undefined;
  }
}

/** The options that choose how the file is rendered (render, apply and delete take the same). */
function withRenderFlags(cmd: Command): Command {
  return cmd
    .option("--image <image>", "the app image (built from `anyserve k8s dockerfile`)", "anyserve-app:latest")
    .option("--namespace <ns>", "namespace of every object (default: none — kubectl's, or for apply/delete the kubeconfig context's)")
    .option("--name <name>", "prefix of every object's name", "anyserve")
    .option("--app-dir <dir>", "where the app is inside the image", "/app")
    .option("--api-replicas <n>", "API server pods (each replica registers with every one)", intOption("--api-replicas", 1, 100), 2)
    .option("--token-secret <name>", "an existing Secret holding the control-plane token (key `token`): referenced, not rendered")
    .option(
      "--token-file <file>",
      "the control-plane token rendered as a Secret (default: .anyserve/token beside FILE, made on first use)",
    );
}
