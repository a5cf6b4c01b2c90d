/**
 * Class services (the seed's SAGE service classes): each public method of a class becomes the
 * capability `{service: <name>, method: <method>}` (a class whose only method is `process` is
 * called with `method: "process"` by default). One instance per worker, created when the worker
 * starts, and used by every method (the methods share the replica's workers); the instance gets
 * its {@link ServiceContext} before its constructor body runs (extend {@link Service}, or read
 * `currentServiceContext()` in the constructor), and the hooks `setup`, `start`, `stop` and
 * `cleanup` run around its life.
 *
 * Calls carry the arguments as JSON (input `args`, an array) and answer with the method's result
 * as JSON (output `result`), so `callService("kv").get("k")` reads like a local call.
 *
 * **State under `multi`, `pool` and `process`.** Threads and processes share no objects, so each
 * worker has its own instance. Which instance a call meets is the class's `static affinity`
 * (docs/execution.md, "Class services"):
 * - `"key"` (the default): a call goes to the worker that owns its first argument, so
 *   `set("k", v)` then `get("k")` meet the same instance — state partitioned by the first argument,
 *   as in the KV example below. Calls without arguments run on any worker. The service proxies
 *   (`callService`) also send the first argument as the affinity key, so under
 *   `load_balancing: consistent_hash` a key stays on one replica too.
 * - `"instance"`: every call goes to one worker: one instance holds all the state (a counter, a
 *   list); the other workers stay idle for this service.
 * - `"none"`: any worker (the class keeps no state between calls).
 *
 * Under `single` and `async` there is one instance, on the replica's event loop, whatever the affinity.
 *
 * @example
 * ```ts
 * // kv.ts — deployed with `app: ./kv.ts:KVService` or `env.registerService("kv", KVService)`
 * import { Service } from "anyserve";
 * export class KVService extends Service {
 *   #data = new Map<string, unknown>();
 *   get(key: string) { return this.#data.get(key) ?? null; }
 *   set(key: string, value: unknown) { this.#data.set(key, value); return true; }
 *   async describe() { return { size: this.#data.size, replica: this.ctx.replicaId }; }
 * }
 * export class Counter extends Service {
 *   static affinity = "instance"; // one count for the whole replica, not one per worker
 *   #n = 0;
 *   increment() { return ++this.#n; }
 * }
 * ```
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { AnyServeError } from "../errors.js";
import { AFFINITY_HEADER } from "../protocol/call.js";
import type { CapabilityMap } from "../protocol/capability.js";
import { AnyServe, type WorkerInfo } from "./app.js";
import type { Client, InferOptions } from "./client.js";
import type { Context } from "./context.js";
import type { InferenceRequest } from "./request.js";
import { jsonLogger, type Logger } from "../util/log.js";

/** What a service instance knows about where it runs, and how it calls other services. */
export interface ServiceContext {
  serviceName: string;
  replicaId: string;
  worker: string;
  logger: Logger;
  /** The request being served, while a method runs (cross-service calls go through it, within its deadline). */
  readonly request: Context | undefined;
  /** `await ctx.callService("other").method(...args)` through the router, within the current request's deadline. */
  callService(name: string): ServiceProxy;
}

/** Methods of a remote service: every property is an async method. */
export type ServiceProxy = Record<string, (...args: unknown[]) => Promise<unknown>>;

/** Lifecycle methods, never exposed as capabilities. */
export const SERVICE_HOOKS = new Set(["setup", "start", "stop", "cleanup", "close", "constructor"]);

/**
 * The context of the instance being constructed, kept on the global object under a registry
 * symbol: the class may extend {@link Service} from another copy of the package than the one
 * constructing it (an app's own `node_modules/anyserve`, or the built package beside the sources).
 */
const PENDING = Symbol.for("anyserve.pendingServiceContext");
const pending = globalThis as { [PENDING]?: ServiceContext | undefined };

/** The context of the service instance being constructed (valid inside a constructor). */
export function currentServiceContext(): ServiceContext {
  const ctx = pending[PENDING];
  if (!ctx) throw new AnyServeError("INTERNAL", "a service context exists only while anyserve constructs the service");
  return ctx;
}

/** Optional base class: `this.ctx` is set before the subclass's constructor body runs. */
export class Service {
  protected readonly ctx: ServiceContext;
  constructor() {
    this.ctx = currentServiceContext();
  }
}

type ServiceClass = new (...args: unknown[]) => object;

/** Which worker's instance a call of a class service meets (the class's `static affinity`). */
export type ServiceAffinity = "key" | "instance" | "none";
export const SERVICE_AFFINITIES: readonly ServiceAffinity[] = ["key", "instance", "none"];

/** What an app made by {@link serviceApp} serves, for the replica's log. */
export interface ServiceInfo {
  name: string;
  className: string;
  affinity: ServiceAffinity;
  /** The constructor's arguments (thread and process workers construct their instances with them). */
  args: unknown[];
}

/** Where a service app keeps its {@link ServiceInfo} (a symbol of the registry: the app may come from another copy of the package). */
const SERVICE_INFO = Symbol.for("anyserve.service");

/** The class service an app serves, if it was made by {@link serviceApp}. */
export function serviceInfo(app: AnyServe): ServiceInfo | undefined {
  return (app as unknown as Record<symbol, ServiceInfo | undefined>)[SERVICE_INFO];
}

/** The class's `static affinity`, checked: `key` when it declares none. */
export function affinityOf(Class: ServiceClass): ServiceAffinity {
  const a = (Class as unknown as { affinity?: unknown }).affinity;
  if (a === undefined) return "key";
  if (typeof a === "string" && (SERVICE_AFFINITIES as readonly string[]).includes(a)) return a as ServiceAffinity;
  throw new TypeError(
    `service class ${Class.name}: static affinity must be one of ${SERVICE_AFFINITIES.join(", ")}, got ${JSON.stringify(a)}`,
  );
}

/** The affinity key of a call with these arguments: its first argument (as a string; JSON unless it is one), if any. */
export function affinityKeyOf(args: readonly unknown[]): string | undefined {
  if (args.length === 0 || args[0] === undefined || args[0] === null) return undefined;
  return typeof args[0] === "string" ? args[0] : JSON.stringify(args[0]);
}

/** True for a class (as opposed to an app object or a plain function meant as a handler). */
export function isServiceClass(value: unknown): value is ServiceClass {
  return typeof value === "function" && /^class[\s{]/.test(Function.prototype.toString.call(value));
}

/** The public methods of a class, own and inherited (not hooks, not `_private`). */
export function serviceMethods(Class: ServiceClass): string[] {
  const names = new Set<string>();
  for (
    let proto = Class.prototype as object | null;
    proto && proto !== Object.prototype && proto !== Service.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const desc = Object.getOwnPropertyDescriptor(proto, name);
      if (desc && typeof desc.value === "function" && !SERVICE_HOOKS.has(name) && !name.startsWith("_")) names.add(name);
    }
  }
  return [...names];
}

/** Builds the app that serves a class: one capability per public method. */
export function serviceApp(serviceName: string, Class: ServiceClass, args: unknown[] = []): AnyServe {
  const app = new AnyServe();
  const methods = serviceMethods(Class);
  if (methods.length === 0) throw new TypeError(`service class ${Class.name} has no public methods to serve`);
  const affinity = affinityOf(Class);
  const info: ServiceInfo = { name: serviceName, className: Class.name, affinity, args };
  (app as unknown as Record<symbol, ServiceInfo>)[SERVICE_INFO] = info;
  const pin =
    affinity === "instance"
      ? ("instance" as const)
      : affinity === "key"
        ? (req: InferenceRequest) => affinityKeyOf(argsOf(req))
        : undefined;
  let instance: Record<string, unknown> | undefined;
  let starting: Promise<void> | undefined;
  let live = 0;
  // The request each method call serves, kept per async call chain: methods may run concurrently.
  const current = new AsyncLocalStorage<Context>();
  const ensure = (info: WorkerInfo): Promise<void> =>
    (starting ??= (async () => {
      const ctx = makeContext(serviceName, info, () => current.getStore());
      pending[PENDING] = ctx;
      try {
        instance = new Class(...args) as Record<string, unknown>;
      } finally {
        pending[PENDING] = undefined;
      }
      await callHook(instance, "setup");
      await callHook(instance, "start");
    })());
  const onStart = async (info: WorkerInfo): Promise<void> => {
    live++;
    await ensure(info);
  };
  const onStop = async (): Promise<void> => {
    if (--live > 0 || !instance) return;
    const it = instance;
    instance = undefined;
    starting = undefined;
    await callHook(it, "stop");
    await callHook(it, "cleanup");
    await callHook(it, "close");
  };
  for (const method of methods) {
    const cap: CapabilityMap = { service: serviceName, method };
    app.capability(
      cap,
      async (req: InferenceRequest, ctx: Context) => {
        if (!instance) await ensure({ capability: cap, replicaId: ctx.replicaId, worker: "main" });
        const fn = instance![method] as (...a: unknown[]) => unknown;
        const result = await current.run(ctx, () => fn.apply(instance, argsOf(req)));
        return jsonResult(result);
      },
      {
        onStart,
        onStop,
        ...(pin ? { affinity: pin } : {}),
        inputs: [{ name: "args", datatype: "BYTES", shape: [1] }],
        outputs: [{ name: "result", datatype: "BYTES", shape: [1] }],
        // The parameters' own names as the arguments: `set("key", "value")`, then `get("key")`.
        example: { args: JSON.stringify(paramNames(Class.prototype[method as keyof object] as unknown as () => unknown)) },
      },
    );
  }
  return app;
}

/** A function's parameter names as written (`get(key)` → `["key"]`); `argN` where a name cannot be read. */
export function paramNames(fn: (...a: never[]) => unknown): string[] {
  const head = /^[^(]*\(([^)]*)\)/.exec(Function.prototype.toString.call(fn))?.[1] ?? "";
  return head
    .split(",")
    .map((p) => p.replace(/=[\s\S]*$/, "").trim())
    .filter((p) => p.length > 0)
    .map((p, i) => (/^[A-Za-z_$][\w$]*$/.test(p) ? p : `arg${i + 1}`));
}

/** The answer as one JSON output `result`, so arrays and objects come back exactly as returned. */
function jsonResult(result: unknown): unknown {
  const text = JSON.stringify(result === undefined ? null : result);
  return { outputs: [{ name: "result", datatype: "BYTES", shape: [1], parameters: { content_type: "application/json" }, data: [text] }] };
}

function argsOf(req: InferenceRequest): unknown[] {
  if (!req.has("args")) return [];
  const text = String(req.value("args"));
  let args: unknown;
  try {
    args = JSON.parse(text);
  } catch {
    throw new AnyServeError(
      "INVALID_REQUEST",
      `input 'args': expected a JSON array of arguments, got ${JSON.stringify(text.slice(0, 64))}`,
    );
  }
  if (!Array.isArray(args))
    throw new AnyServeError("INVALID_REQUEST", `input 'args': expected a JSON array of arguments, got ${typeof args}`);
  return args;
}

async function callHook(instance: Record<string, unknown>, hook: string): Promise<void> {
  const fn = instance[hook];
  if (typeof fn === "function") await (fn as () => unknown).call(instance);
}

function makeContext(serviceName: string, info: WorkerInfo, request: () => Context | undefined): ServiceContext {
  return {
    serviceName,
    replicaId: info.replicaId,
    worker: info.worker,
    logger: jsonLogger("service", { service: serviceName, replica: info.replicaId }),
    get request() {
      return request();
    },
    callService(name: string): ServiceProxy {
      return serviceProxy((method, args) => {
        const ctx = request();
        if (!ctx)
          throw new AnyServeError("INTERNAL", `callService('${name}').${method}() is only available while a request is being served`);
        const affinity = affinityKeyOf(args);
        return ctx
          .call({ service: name, method }, { args: JSON.stringify(args) }, affinity === undefined ? {} : { affinity })
          .then(unwrapResult);
      });
    },
  };
}

/**
 * A service's methods through an SDK client, from outside the deployment. Each call sends its first
 * argument as the affinity key (`X-Anyserve-Affinity`), so under `load_balancing: consistent_hash`
 * the calls of one key reach one replica — and there, one worker.
 *
 * @example
 * ```ts
 * const client = new Client({ apiServer: "http://127.0.0.1:8080" });
 * const kv = callService(client, "kv_service");
 * await kv.set("user:1", { name: "Ada" });
 * console.log(await kv.get("user:1")); // { name: "Ada" }
 * ```
 */
export function callService(client: Pick<Client, "infer">, name: string, options: Omit<InferOptions, "headers"> = {}): ServiceProxy {
  return serviceProxy((method, args) => invokeService(client, name, method, args, options));
}

/** One call of a service's method through `client`: arguments as JSON, the first one as the affinity key; the method's result back. */
export async function invokeService(
  client: Pick<Client, "infer">,
  service: string,
  method: string,
  args: unknown[],
  options: Omit<InferOptions, "headers"> = {},
): Promise<unknown> {
  const key = affinityKeyOf(args);
  const headers = key === undefined ? undefined : { [AFFINITY_HEADER]: key };
  return unwrapResult(await client.infer({ service, method }, { args: JSON.stringify(args) }, headers ? { ...options, headers } : options));
}

/** A proxy whose every property is a method that sends `(method, args)` to `send`. */
export function serviceProxy(send: (method: string, args: unknown[]) => Promise<unknown>): ServiceProxy {
  return new Proxy({} as ServiceProxy, {
    get: (_t, method) => (typeof method === "string" && method !== "then" ? (...args: unknown[]) => send(method, args) : undefined),
  });
}

/** A service method's answer is `{result}` (JSON); give back the result itself. */
export function unwrapResult(value: unknown): unknown {
  return value !== null && typeof value === "object" && "result" in (value as object) ? (value as { result: unknown }).result : value;
}
