/**
 * `anyserve k8s render FILE`: the deployment file as Kubernetes manifests (multi-document YAML on
 * stdout, for `kubectl apply -f -` or a GitOps repository); `anyserve k8s dockerfile`: the app
 * image's Dockerfile. The mapping is `src/deploy/kubernetes/render.ts`'s (docs/scale-out.md).
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { stringify } from "yaml";
import { ConfigError } from "../config/errors.js";
import { dockerfile, renderManifests } from "../deploy/kubernetes/render.js";
import { intOption } from "./common.js";

export function registerK8sCommand(program: Command): void {
  const k8s = program.command("k8s").description("Kubernetes: render a deployment file as manifests, print the app image's Dockerfile");
  k8s
    .command("render <file>")
    .description("print the deployment file as Kubernetes manifests (multi-document YAML)")
    .option("--image <image>", "the app image (built from `anyserve k8s dockerfile`)", "anyserve-app:latest")
    .option("--namespace <ns>", "namespace of every object (default: none, kubectl's)")
    .option("--name <name>", "prefix of every object's name", "anyserve")
    .option("--app-dir <dir>", "where the app is inside the image", "/app")
    .option("--api-replicas <n>", "API server pods (each replica registers with every one)", intOption("--api-replicas", 1, 100), 2)
    .action(async (file: string, o: { image: string; namespace?: string; name: string; appDir: string; apiReplicas: number }) => {
      try {
        const text = await readFile(file, "utf8").catch((err: Error) => {
          throw new ConfigError(file, [{ path: "", message: `cannot read the file: ${err.message}` }]);
        });
        const manifests = renderManifests(text, { source: file, ...o });
        process.stdout.write(manifests.map((m) => stringify(m, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n"));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`${err.message}\n`);
        process.exitCode = 2;
      }
    });
  k8s
    .command("dockerfile")
    .description("print the Dockerfile of the app image the manifests run")
    .option("--app-dir <dir>", "where the app goes inside the image", "/app")
    .action((o: { appDir: string }) => {
      process.stdout.write(dockerfile(o));
    });
}
