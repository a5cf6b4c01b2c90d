/**
 * `anyserve start`: one replica serving one app. Its config is one replica document
 * (`src/config/replica.ts`): from `--replica-config` (what `anyserve up` passes), or built from the
 * flags, which are derived from the config schema (`config-flags.ts`).
 */
import path from "node:path";
import type { Command } from "commander";
import { ObjectStore } from "../objects/store.js";
import { startReplica } from "../replica/replica.js";
import { loadServable } from "../models/load.js";
import { addConfigFlags, replicaDocFromFlags } from "./config-flags.js";
import { announceReady, configErrorExit, onShutdown } from "./common.js";
import { ConfigError } from "../config/errors.js";
import { apiServersOf } from "../config/replica.js";
import { loadDeploymentFile } from "../deploy/load.js";
import { readCa, readServerTls, type ServerTls } from "../util/tls.js";

export function registerStartCommand(program: Command): void {
  const cmd = program
    .command("start")
    .description("run a replica: serve an app over OIP v2 (gRPC and REST) and register it with the API server")
    .option("--token <token>", "the deployment's control-plane token, to register with (default: $ANYSERVE_TOKEN)")
    .option("--inference-token <token>", "inference routes need this token (default: $ANYSERVE_INFERENCE_TOKEN)")
    .option("--drained", "start drained: registered but out of rotation until undrained (POST /api/replicas/{id}/undrain)")
    .option(
      "--deployment <file>",
      "take the service's config from this deployment file (with --service), resolved as `up` does; other config flags then only say who and where the replica is",
    );
  addConfigFlags(cmd).action(async (o: { token?: string; inferenceToken?: string; deployment?: string; drained?: boolean }) => {
    const fromFile = o.deployment === undefined ? undefined : await serviceFromFile(o.deployment, cmd.getOptionValue("service"));
    const doc = configErrorExit(() => replicaDocFromFlags(cmd, fromFile));
    const cfg = doc.config;
    const service = doc.service ?? undefined;
    // Worker threads and processes read the service name from the environment, so they agree.
    if (service) process.env.ANYSERVE_SERVICE = service;
    const app = await loadServable(cfg.app, { ...(service ? { service } : {}), python: cfg.deployment.python });
    const token = o.token ?? process.env.ANYSERVE_TOKEN;
    const inferenceToken = o.inferenceToken ?? process.env.ANYSERVE_INFERENCE_TOKEN;
    const tls = configErrorExit(() => tlsOf(cfg.tls));
    const objects = cfg.object_store;
    const objectStore = new ObjectStore({
      dir: objects.dir,
      maxObjectBytes: objects.max_object_mb * 1024 * 1024,
      maxTotalBytes: Math.round(objects.max_total_gb * 1024 ** 3),
      cacheRemote: objects.cache_remote,
      sweepIntervalSeconds: 60,
      ...(token ? { token } : {}),
    });
    const replica = await startReplica({
      app,
      appSpec: cfg.app,
      config: cfg,
      objectStore,
      host: doc.host,
      ...(doc.advertise_host ? { advertiseHost: doc.advertise_host } : {}),
      port: doc.port,
      httpPort: doc.http_port,
      ...(doc.api_server ? { apiServer: apiServersOf(doc) } : {}),
      ...(doc.replica_id ? { replicaId: doc.replica_id } : {}),
      ...(token ? { token } : {}),
      ...(inferenceToken ? { inferenceToken } : {}),
      ...tls,
      // Shown (registry, status, dashboard) under its service; by hand without --service, the app
      // file's name — a class export keeps serving under its own name (`service` above).
      service: service ?? serviceOfApp(cfg.app),
      ...(doc.node ? { node: doc.node } : {}),
      ...(o.drained ? { drained: true } : {}),
    });
    announceReady({ role: "replica", replicaId: replica.replicaId, http: replica.httpUrl, grpc: replica.grpcAddress });
    onShutdown(() => replica.stop().finally(() => objectStore.close()));
  });
}

/**
 * The service a replica started without `--service` is registered under: its app file's name,
 * as a service name (`./chat_app.ts:app` → `chat_app`; the seed's dotted `examples.chat_app:app`
 * too).
 */
export function serviceOfApp(spec: string): string {
  const colon = spec.lastIndexOf(":");
  const file = path.basename(colon > 1 ? spec.slice(0, colon) : spec).replace(/\.[cm]?[jt]sx?$/, "");
  const name = file
    .slice(file.lastIndexOf(".") + 1)
    .replace(/[^A-Za-z0-9_.-]/g, "_")
    .slice(0, 64);
  return name.length > 0 ? name : "app";
}

/** The replica's TLS identity and trusted CA from its config's `tls` section (files read and checked now). */
function tlsOf(t: { cert: string | null; key: string | null; ca: string | null }): { tls?: ServerTls; tlsCa?: Buffer } {
  try {
    return {
      ...(t.cert !== null && t.key !== null ? { tls: readServerTls({ cert: t.cert, key: t.key }) } : {}),
      ...(t.ca !== null ? { tlsCa: readCa(t.ca) } : {}),
    };
  } catch (err) {
    throw new ConfigError("replica config", [{ path: "tls", message: (err as Error).message }]);
  }
}

/** Service `service`'s config in deployment file `file`, loaded as `up` loads it (paths relative to the file); exits 2 when it cannot be had. */
async function serviceFromFile(file: string, service: unknown): Promise<{ file: string; service: string; config: unknown }> {
  const config = await loadDeploymentFile(file).catch((err: unknown) =>
    configErrorExit(() => {
      throw err;
    }),
  );
  return configErrorExit(() => {
    const own = typeof service === "string" ? config.services[service] : undefined;
    if (own === undefined) {
      const got = typeof service === "string" ? `'${service}'` : "nothing";
      throw new ConfigError(file, [
        { path: "--service", message: `expected one of ${Object.keys(config.services).join(", ")}, got ${got}` },
      ]);
    }
    return { file, service: service as string, config: own };
  });
}
