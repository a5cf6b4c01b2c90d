/** `anyserve apply FILE` and `anyserve validate FILE`. */
import type { Command } from "commander";
import { ConfigError, loadDeploymentFile } from "../deploy/load.js";
import type { DeploymentFile } from "../config/schema.js";
import { checkApps } from "../deploy/check-apps.js";
import { tokenFileOf, tokenFor } from "./credentials.js";

export function registerApplyCommands(program: Command): void {
  program
    .command("validate")
    .argument("<file>", "deployment file")
    .description("check a deployment file without starting anything")
    .action(async (file: string) => {
      try {
        const config = await loadDeploymentFile(file);
        await checkApps(config, file);
        const services = Object.entries(config.services);
        process.stdout.write(
          `${file}: valid — ${services.length} service(s): ${services.map(([n, s]) => `${n} (${s.deployment.replicas} × ${s.deployment.threading_strategy})`).join(", ")}\n`,
        );
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
    });

  program
    .command("apply")
    .argument("<file>", "deployment file")
    .description("apply a changed deployment file to a running `anyserve up`")
    .option("--api-server <url>", "the API server of the running deployment", "http://127.0.0.1:8080")
    .option("--token <token>", "control-plane token (default: $ANYSERVE_TOKEN, else the deployment's token file)")
    .option("--token-file <file>", "read the token from this file")
    .action(async (file: string, o: { apiServer: string; token?: string; tokenFile?: string }) => {
      let config: DeploymentFile;
      try {
        config = await loadDeploymentFile(file); // validates here first, and makes app paths absolute
        await checkApps(config, file);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      let token: string | undefined;
      try {
        token = tokenFor(o.apiServer, { token: o.token, tokenFile: o.tokenFile, files: [tokenFileOf(file)] });
      } catch (err) {
        process.stderr.write(`anyserve apply: ${(err as Error).message}\n`);
        process.exit(2);
      }
      const res = await fetch(`${o.apiServer.replace(/\/+$/, "")}/api/apply`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(config),
      });
      const body = (await res.json()) as {
        services?: Record<string, { status: string; replicas: number; reason?: string; changed: { field: string; applied: string }[] }>;
        error?: string;
      };
      if (!res.ok) {
        process.stderr.write(`apply failed (${res.status}): ${body.error}\n`);
        process.exit(1);
      }
      for (const [name, s] of Object.entries(body.services ?? {})) {
        const changes = s.changed
          .map((c) => `${c.field} (${c.applied === "live" ? "applied live" : "replicas replaced one by one"})`)
          .join(", ");
        process.stdout.write(
          `${name}: ${s.status}, ${s.replicas} replica(s)${s.reason ? ` — ${s.reason}` : ""}${changes ? `; changed ${changes}` : ""}\n`,
        );
      }
    });
}
