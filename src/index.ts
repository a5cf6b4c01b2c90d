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
export { AnyServe, type Handler, type HandlerOptions, type HandlerEntry, type TensorSpec } from "./sdk/app.js";
export { Context, type CallOptions } from "./sdk/context.js";
export { InferenceRequest } from "./sdk/request.js";
export { Stream } from "./sdk/stream.js";
export { Client, type ClientOptions, type InferOptions } from "./sdk/client.js";
export { Capability, type CapabilityMap, type CapabilityInput } from "./protocol/capability.js";
export { AnyServeError, ERROR_CATALOGUE, type ErrorCode } from "./errors.js";
export type { Datatype, Tensor, InferRequest, InferResponse, Parameters } from "./protocol/types.js";
export { startApiServer, type ApiServerOptions, type RunningApiServer } from "./gateway/api-server.js";
export { startReplica, type ReplicaOptions, type RunningReplica } from "./replica/replica.js";
export { Registry } from "./gateway/registry.js";
export { loadApp } from "./sdk/load-app.js";
