/**
 * The seed's environment API in TypeScript: register class services (with or without a deployment
 * config), or load a deployment file, start everything, and call services through the router.
 *
 * @example
 * ```ts
 * import { Environment } from "anyserve/server";
 * import { KVService } from "./kv.js";
 * const env = new Environment();
 * env.registerService("kv_service", KVService);
 * env.registerServiceWithConfig("kv_big", KVService, { deployment: { replicas: 2, threading_strategy: "async", thread_count: 8 } });
 * await env.start();
 * await env.callService("kv_service").set("a", 1);
 * console.log(await env.callService("kv_service").get("a")); // 1
 * await env.stop();
 * ```
 */
import { AnyServeError } from "../errors.js";
import { WORKER_STRATEGIES } from "../execution/index.js";
import { classModuleSpec } from "./class-module.js";
import { DeploymentController } from "./controller.js";
import { loadDeploymentFile } from "./load.js";
import { localNode, type NodeCapacity, place, PlacementError, type ServicePlacement } from "./placement.js";
import {
  deploymentFileSchema,
  nodeSchema,
  serviceSchema,
  type DeploymentFile,
  type SectionName,
  type ServiceConfig,
} from "../config/schema.js";
import { startApiServer, type RunningApiServer } from "../gateway/api-server.js";
import type { ServiceView } from "../gateway/status.js";
import { startReplica, type RunningReplica } from "../replica/replica.js";
import { createLogger, silentLogger, type Logger } from "../util/logger.js";
import { Client } from "../sdk/client.js";
import { invokeService, serviceApp, serviceProxy, type ServiceProxy } from "../sdk/service.js";

type ServiceClass = new (...args: never[]) => object;

/** A config as users write it: any subset of the sections, defaults for the rest. */
export type ServiceConfigInput = {
  [S in SectionName]?: Partial<ServiceConfig[S]>;
} & { app?: string };

export interface EnvironmentOptions {
  /** API server port (default: any free port). */
  port?: number;
  host?: string;
  logger?: Logger;
}

interface Registered {
  name: string;
  Class: ServiceClass;
  args: unknown[];
  config: ServiceConfig;
}

/** What {@link Environment.getServiceStatistics} answers (the seed's SAGE statistics, plus codes and latency). */
export interface ServiceStatistics {
  service_name: string;
  /** The registered class's name, or "app" for a service deployed from a module. */
  service_type: string;
  is_running: boolean;
  replicas: number;
  request_count: number;
  error_count: number;
  errors_by_code: Record<string, number>;
  last_activity_time: string | null;
  latency_ms: { p50: number; p95: number; p99: number } | null;
}

/** A pending call of `callServiceAsync`: await it, or cancel it. */
export interface ServiceCall<T = unknown> extends PromiseLike<T> {
  cancel(): void;
}

export class Environment {
  readonly #o: EnvironmentOptions;
  readonly #registered = new Map<string, Registered>();
  #file: DeploymentFile | undefined;
  #api: RunningApiServer | undefined;
  #client: Client | undefined;
  #controller: DeploymentController | undefined;
  readonly #replicas: RunningReplica[] = [];
  readonly #unschedulable = new Map<string, string>();

  constructor(options: EnvironmentOptions = {}) {
    this.#o = options;
  }

  /** The API server's URL once started. */
  get url(): string | undefined {
    return this.#api?.url;
  }

  registerService(name: string, Class: ServiceClass, ...args: unknown[]): this {
    return this.registerServiceWithConfig(name, Class, {}, ...args);
  }

  registerServiceWithConfig(name: string, Class: ServiceClass, config: ServiceConfigInput, ...args: unknown[]): this {
    if (this.#registered.has(name)) throw new AnyServeError("CONFIG_INVALID", `service '${name}' is already registered`);
    const parsed = serviceSchema.safeParse({ app: config.app ?? `<class ${Class.name}>`, ...config });
    if (!parsed.success) {
      throw new AnyServeError(
        "CONFIG_INVALID",
        `service '${name}': ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
    }
    this.#registered.set(name, { name, Class, args, config: parsed.data });
    return this;
  }

  /** The seed's `register_service_on_nodes`: pinned to named nodes, `threads` worker threads each. */
  registerServiceOnNodes(
    name: string,
    Class: ServiceClass,
    o: { nodes: string[]; threads?: number; memoryMb?: number; app?: string },
    ...args: unknown[]
  ): this {
    return this.registerServiceWithConfig(
      name,
      Class,
      {
        ...(o.app ? { app: o.app } : {}),
        deployment: {
          target: "remote_specific",
          target_nodes: o.nodes,
          threading_strategy: o.app ? "multi" : "async",
          thread_count: o.threads ?? 1,
        },
        resources: { memory_mb: o.memoryMb ?? null },
      },
      ...args,
    );
  }

  /**
   * The seed's `register_local_service_pool`: a pool of `poolSize` worker threads growing to
   * `maxThreads`, each with its own instance of the class (calls keyed by their first argument,
   * docs/execution.md). The threads load the class from its module: `app` (`"./llm.ts:LLMService"`),
   * or, when not given, the module that exports the class (it must not be the program's main
   * module). `gpuCount` GPUs must exist on this node, or `start()` refuses, as `up` does.
   */
  registerLocalServicePool(
    name: string,
    Class: ServiceClass,
    o: { poolSize: number; maxThreads?: number; gpuCount?: number; app?: string },
    ...args: unknown[]
  ): this {
    return this.registerServiceWithConfig(
      name,
      Class,
      {
        ...(o.app ? { app: o.app } : {}),
        deployment: {
          target: "local",
          threading_strategy: "pool",
          thread_count: o.poolSize,
          thread_pool_size: o.poolSize,
          max_thread_count: o.maxThreads ?? o.poolSize,
        },
        resources: { gpu_count: o.gpuCount ?? null },
      },
      ...args,
    );
  }

  /** The seed's `load_service_deployment_config`: services from a YAML file run as their own processes. */
  async loadServiceDeploymentConfig(path: string): Promise<this> {
    this.#file = await loadDeploymentFile(path);
    return this;
  }

  /**
   * Starts the API server and every service. Refuses (DEPLOYMENT_DOES_NOT_FIT, nothing started)
   * when the services together need more CPU, memory or GPUs than this node has, as `up` does.
   */
  async start(): Promise<void> {
    if (this.#api) return;
    const logger = this.#o.logger ?? silentLogger;
    const node = localNode(this.#file?.node ?? nodeSchema.parse({}));
    const placed = this.#place(node);
    this.#api = await startApiServer({ port: this.#o.port ?? 0, host: this.#o.host ?? "127.0.0.1", logger });
    this.#client = new Client({ apiServer: this.#api.url });
    try {
      await this.#startServices(node, placed, logger);
    } catch (err) {
      await this.stop(); // what did start stops again: a failed start leaves nothing running
      throw err;
    }
  }

  async #startServices(node: NodeCapacity, placed: Map<string, ServicePlacement>, logger: Logger): Promise<void> {
    for (const r of this.#registered.values()) {
      const p = placed.get(r.name);
      if (p?.status === "unschedulable") {
        this.#unschedulable.set(r.name, p.reason);
        logger.warn({ service: r.name, reason: p.reason }, "service is unschedulable on this node");
        continue;
      }
      await this.#startInProcess(r, logger);
    }
    const api = this.#api!;
    if (this.#file) {
      this.#controller = new DeploymentController({
        apiServerUrl: api.url,
        registry: api.registry,
        policies: api.policies,
        node,
        logger: createLogger("environment"),
      });
      api.status.attach(this.#controller);
      await this.#controller.apply(deploymentFileSchema.parse(this.#file));
    }
    // Everything this environment runs has registered: "nothing matches" is now a plain 404.
    api.forwarder.endWarmup();
  }

  /**
   * The seed's `ServiceMonitor.get_service_status()`: the service's config, replicas and their
   * health, request/error counts, rps, latency p50/p95/p99, queue depth, active workers, CPU and
   * memory — the same view as `GET /api/services/{name}`. Undefined for an unknown service.
   *
   * @example
   * const s = await env.getServiceStatus("kv_service");
   * console.log(s?.stats.requests, s?.stats.latency_ms?.p99);
   */
  async getServiceStatus(name: string): Promise<ServiceView | undefined> {
    if (!this.#api) throw new Error("the environment is not started: call await env.start() first");
    await this.#api.status.refresh();
    return this.#api.status.service(name);
  }

  /**
   * SAGE's service-task statistics, from the same counters as {@link getServiceStatus}:
   * requests answered through the router, errors among them, and when the last one was.
   *
   * @example
   * const s = await env.getServiceStatistics("kv");
   * // { service_name: "kv", service_type: "KVService", is_running: true, request_count: 7, error_count: 2, … }
   */
  async getServiceStatistics(name: string): Promise<ServiceStatistics | undefined> {
    const view = await this.getServiceStatus(name);
    if (!view) return undefined;
    return {
      service_name: name,
      service_type: this.#registered.get(name)?.Class.name ?? "app",
      is_running: view.replicas.some((r) => r.health === "healthy"),
      replicas: view.replicas.length,
      request_count: view.stats.requests,
      error_count: view.stats.errors,
      errors_by_code: view.stats.errors_by_code,
      last_activity_time: view.stats.last_activity_time,
      latency_ms: view.stats.latency_ms,
    };
  }

  /** Stops every replica (each drains) and the API server; calling it again does nothing. */
  async stop(): Promise<void> {
    const api = this.#api;
    if (!api) return;
    this.#api = undefined;
    await this.#controller?.stopAll();
    await Promise.all(this.#replicas.splice(0).map((r) => r.stop()));
    await this.#client?.close();
    this.#client = undefined;
    await api.close();
  }

  /** `await using env = new Environment()` stops it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** `await env.callService("kv").get("a")` — through the router, like any client. */
  callService(name: string, o: { timeout?: number } = {}): ServiceProxy {
    return serviceProxy((method, args) => this.#call(name, method, args, o.timeout));
  }

  /** Like {@link callService}, but each call returns a {@link ServiceCall} that can be cancelled. */
  callServiceAsync(name: string, o: { timeout?: number } = {}): Record<string, (...args: unknown[]) => ServiceCall> {
    return new Proxy(
      {},
      {
        get: (_t, method) =>
          typeof method !== "string" || method === "then"
            ? undefined
            : (...args: unknown[]): ServiceCall => {
                const controller = new AbortController();
                const promise = this.#call(name, method, args, o.timeout, controller.signal);
                // biome-ignore lint/suspicious/noThenProperty: a ServiceCall is a thenable on purpose (await it, or cancel it)
                return { then: promise.then.bind(promise), cancel: () => controller.abort() };
              },
      },
    );
  }

  /** Why a registered service is not running here, if it is not. */
  unschedulableReason(name: string): string | undefined {
    return this.#unschedulable.get(name);
  }

  /** Placement of the registered services (and the file's) on this node: throws when they do not fit. */
  #place(node: NodeCapacity): Map<string, ServicePlacement> {
    const services = { ...this.#file?.services, ...Object.fromEntries([...this.#registered.values()].map((r) => [r.name, r.config])) };
    try {
      return new Map(place({ services }, node).map((p) => [p.service, p]));
    } catch (err) {
      if (err instanceof PlacementError) throw new AnyServeError("DEPLOYMENT_DOES_NOT_FIT", err.message, { problems: err.problems });
      throw err;
    }
  }

  async #call(service: string, method: string, args: unknown[], timeout?: number, signal?: AbortSignal): Promise<unknown> {
    if (!this.#client) throw new AnyServeError("INTERNAL", "the environment is not started: await env.start() first");
    return invokeService(this.#client, service, method, args, {
      ...(timeout !== undefined ? { timeout } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  /** The module workers load the class from: the config's `app`, else the one that exports the class. */
  async #moduleOf(r: Registered): Promise<string | undefined> {
    if (!r.config.app.startsWith("<")) return r.config.app;
    const strategy = r.config.deployment.threading_strategy;
    if (!WORKER_STRATEGIES.has(strategy)) return undefined;
    const fail = (why: string): never => {
      throw new AnyServeError(
        "CONFIG_INVALID",
        `service '${r.name}': threading_strategy '${strategy}' runs it in worker threads or processes, which load class ${r.Class.name} from its module, but ${why}: export the class from a module of its own, or name it in app (e.g. app: './kv.ts:${r.Class.name}')`,
      );
    };
    const spec = await classModuleSpec(r.Class).catch((err: unknown) => fail((err as Error).message));
    return spec ?? fail("no module exports it");
  }

  async #startInProcess(r: Registered, logger: Logger): Promise<void> {
    const d = r.config.deployment;
    const appSpec = await this.#moduleOf(r);
    for (let i = 0; i < d.replicas; i++) {
      const replica = await startReplica({
        app: serviceApp(r.name, r.Class as never, r.args),
        replicaId: `${r.name}-${i}`,
        service: r.name,
        apiServer: this.#api!.url,
        timeoutMs: r.config.performance.timeout * 1000,
        config: r.config,
        ...(appSpec !== undefined ? { appSpec } : {}),
        heartbeatIntervalMs: Math.round(r.config.monitoring.health_check_interval * 1000),
        logger,
      });
      this.#replicas.push(replica);
    }
    // Wait until the router knows every replica, so the first call does not race registration.
    await waitUntil(() => this.#api!.registry.lookup({ service: r.name }).length >= d.replicas);
  }
}

async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new AnyServeError("INTERNAL", "replicas did not register in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
