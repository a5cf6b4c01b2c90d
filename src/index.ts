/**
 * anyserve — capability-routed serving for models and services. This entry is what an app (and
 * every worker that runs one) imports: the app, its handlers' request, context and stream, class
 * services, the client, capabilities, errors and object refs. It loads no server code; servers,
 * deployments and the in-process environment are `anyserve/server` (src/server.ts).
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
export {
  Service,
  callService,
  currentServiceContext,
  type ServiceAffinity,
  type ServiceContext,
  type ServiceProxy,
} from "./sdk/service.js";
export { Client, type ClientOptions, type InferOptions } from "./sdk/client.js";
export { Capability, type CapabilityMap, type CapabilityInput } from "./protocol/capability.js";
export { AnyServeError, ERROR_CATALOGUE, type ErrorCode } from "./errors.js";
export type { Datatype, Tensor, InferRequest, InferResponse, Parameters } from "./protocol/types.js";
export { ObjRef, type ObjRefData, type ObjRefLike } from "./objects/ref.js";
export type {
  ObjectStoreApi,
  ObjectInfo,
  CreateOptions,
  StreamCreateOptions,
  ReadOptions,
  StreamReadOptions,
} from "./objects/types.js";
export type { Logger } from "./util/log.js";
