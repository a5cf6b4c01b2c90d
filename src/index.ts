/**
 * anyserve — capability-routed serving for models and services.
 *
 * @example
 * ```ts
 * import { AnyServe } from "anyserve";
 * export const app = new AnyServe();
 * app.capability({ type: "chat", model: "demo" }, (req) => `echo: ${req.value("text")}`);
 * // anyserve start --app ./app.ts:app --api-server http://localhost:8080
 * ```
 */
export {
  AnyServe,
  type Handler,
  type HandlerOptions,
  type HandlerEntry,
  type TensorSpec,
  type BatchHandler,
  type LifecycleHook,
  type WorkerInfo,
} from "./sdk/app.js";
export { Context, type CallOptions } from "./sdk/context.js";
export { InferenceRequest } from "./sdk/request.js";
export { Stream } from "./sdk/stream.js";
export { Client, type ClientOptions, type InferOptions } from "./sdk/client.js";
export { Capability, type CapabilityMap, type CapabilityInput } from "./protocol/capability.js";
export { AnyServeError, ERROR_CATALOGUE, type ErrorCode } from "./errors.js";
export type { Datatype, Tensor, InferRequest, InferResponse, Parameters } from "./protocol/types.js";
export { startApiServer, type ApiServerOptions, type RunningApiServer } from "./gateway/api-server.js";
export { startReplica, type ReplicaOptions, type RunningReplica } from "./replica/replica.js";
export type { ExecutionConfig } from "./execution/config.js";
export { Registry } from "./routing/registry.js";
export { loadApp } from "./sdk/load-app.js";
export {
  ObjectStore,
  ObjRef,
  DirBackend,
  allowListPeers,
  registryPeers,
  objectEndpoint,
  withObjectEndpoint,
  type ObjectStoreOptions,
  type ObjectStoreApi,
  type ObjRefData,
  type ObjRefLike,
  type ObjectInfo,
  type CreateOptions,
  type StreamCreateOptions,
  type ReadOptions,
  type StreamReadOptions,
  type ObjectBackend,
  type PeerResolver,
} from "./objects/index.js";
export { Service, currentServiceContext, type ServiceContext, type ServiceProxy } from "./sdk/service.js";
export type { ServiceView, ReplicaView } from "./gateway/status.js";
export {
  Environment,
  type EnvironmentOptions,
  type ServiceConfigInput,
  type ServiceCall,
  type ServiceStatistics,
} from "./deploy/environment.js";
export { loadDeploymentFile, parseDeployment, ConfigError } from "./deploy/load.js";
export type { DeploymentFile, ServiceConfig } from "./deploy/schema.js";
