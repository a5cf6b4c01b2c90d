/**
 * `anyserve/server`: the server side of anyserve — the API server, replicas, app loading, the
 * registry, deployment files, the object store and its backends, and the in-process
 * {@link Environment}. Apps and workers import `anyserve` (src/index.ts), which loads none of it.
 *
 * @example
 * ```ts
 * import { AnyServe } from "anyserve";
 * import { startApiServer, startReplica } from "anyserve/server";
 *
 * const app = new AnyServe();
 * app.capability({ type: "echo" }, (req) => req.value("text"));
 * const api = await startApiServer({ port: 8080 });
 * const replica = await startReplica({ app, apiServer: api.url });
 * // … later
 * await replica.stop();
 * await api.close();
 * ```
 */
export { startApiServer, type ApiServerOptions, type RunningApiServer } from "./gateway/api-server.js";
export type { ServiceView, ReplicaView } from "./gateway/status.js";
export { startReplica, type ReplicaOptions, type RunningReplica } from "./replica/replica.js";
export type { ExecutionConfig } from "./execution/config.js";
export { Registry } from "./routing/registry.js";
export { loadApp, type LoadAppOptions } from "./sdk/load-app.js";
export {
  ObjectStore,
  DirBackend,
  allowListPeers,
  registryPeers,
  objectEndpoint,
  withObjectEndpoint,
  type ObjectStoreOptions,
  type ObjectBackend,
  type PeerResolver,
} from "./objects/index.js";
export {
  Environment,
  type EnvironmentOptions,
  type ServiceConfigInput,
  type ServiceCall,
  type ServiceStatistics,
} from "./deploy/environment.js";
export { loadDeploymentFile, parseDeployment, ConfigError } from "./deploy/load.js";
export type { DeploymentFile, ServiceConfig } from "./config/schema.js";
export { resolveService, type ResolvedServiceConfig } from "./config/resolve.js";
