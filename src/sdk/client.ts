/**
 * The client for users and tests: calls a capability through the API server (or one replica
 * directly) over REST or gRPC, and decodes the answer to JS values.
 *
 * @example
 * ```ts
 * import { Client } from "anyserve";
 * const client = new Client({ apiServer: "http://localhost:8080" });
 * const answer = await client.infer({ type: "chat" }, { text: "hello" }, { timeout: 5000 });
 * for await (const token of client.stream({ type: "stream" }, { text: "one two" })) console.log(token);
 * await client.close();
 * ```
 */
import { normalizeCapability, type CapabilityInput, type CapabilityMap } from "../protocol/capability.js";
import type { InferRequest, InferResponse, Parameters } from "../protocol/types.js";
import { inputsToRequest, responseToValue } from "../protocol/values.js";
import type { RouteCacheState } from "./direct/route-cache.js";
import { errorFromBody } from "./wire.js";
import { Retries } from "./retry.js";
import { ApiServers, failoverOf } from "../util/api-servers.js";
import type { Logger } from "../util/log.js";

export { errorFromBody };

export interface ClientOptions {
  /**
   * The API server's REST URL, e.g. http://localhost:8080 — or several API servers of one
   * deployment: calls go to the first until it fails at the connection level or answers that it is
   * not ready (503 `REGISTRY_WARMING_UP`, `SHUTTING_DOWN`); the retry (see `retry`) and later calls
   * then go to the next, so a call that meets a dead API server is answered by another
   * (docs/scale-out.md). With `direct`, the route table is watched on the same API server.
   * An {@link ApiServers} is shared with its other users (a replica's delegation and object
   * look-ups), so that one of them finding an API server dead moves all.
   *
   * @example
   * ```ts
   * const client = new Client({ apiServer: ["http://10.0.0.1:8080", "http://10.0.0.2:8080"] });
   * ```
   */
  apiServer?: string | readonly string[] | ApiServers;
  /** Where a switch to another API server is logged (warn, once per switch); default: not logged. */
  logger?: Pick<Logger, "warn">;
  /** A replica's REST URL (http://…) to call it directly, or a gRPC `host:port` with protocol "grpc". */
  endpoint?: string;
  /** "rest" (default) or "grpc". With grpc, `apiServer`/`endpoint` is the gRPC `host:port`. */
  protocol?: "rest" | "grpc";
  /** Default timeout per call (ms), default 60 000. */
  timeout?: number;
  /** REST connections kept to the server, default 16. */
  connections?: number;
  /**
   * Call replicas directly over their frame endpoints, chosen by this client from the API
   * server's route table (`GET /routes/watch`), and through the API server only when no replica
   * in the table can take the call or a direct attempt failed before the replica ran it. Needs
   * `apiServer` and REST; streams go direct too. Default false. See docs/routing.md, "Direct path".
   *
   * @example
   * ```ts
   * const client = new Client({ apiServer: "http://localhost:8080", direct: true, token: process.env.ANYSERVE_TOKEN });
   * await client.infer({ type: "embed" }, { text: "hi" }); // the first calls go through the API server until the table arrives
   * await client.close(); // closes the watch stream and every replica connection
   * ```
   */
  direct?: boolean;
  /**
   * For `direct`: the API server's read token or control-plane token, which the route table needs
   * when one is set. A control-plane token also lets the client show replicas the deployment's
   * peer key (derived from it; the token itself is never sent to a replica). See docs/security.md.
   */
  token?: string;
  /**
   * Try a call again, within its timeout, when the answer is retryable — 503 (`QUEUE_FULL`,
   * `NO_READY_REPLICA`, `REGISTRY_WARMING_UP` after an API server restart, `SHUTTING_DOWN`) or the
   * server could not be reached (connection refused or lost before any byte of the answer) — after a
   * jittered back-off from 50 ms to 1 s. Never after part of a stream arrived. Default true; like the
   * gateway's failover it assumes handlers are safe to run twice (`sdk/retry.ts`).
   */
  retry?: boolean;
  /** The inference token (`--inference-token`), when the server has one: sent with every call, REST and gRPC. */
  inferenceToken?: string;
  /**
   * A CA bundle (PEM) to trust besides the system's, for an `https://` server or a TLS gRPC one.
   * gRPC uses TLS when `ca` is given or the address starts with `grpcs://`.
   */
  ca?: string | Buffer;
}

export interface InferOptions {
  /** This call's timeout (ms). */
  timeout?: number;
  parameters?: Parameters;
  id?: string;
  /** Send tensors in the binary tensor extension (REST). Default: only when a tensor needs it (FP16/BF16). */
  binary?: boolean;
  signal?: AbortSignal;
  /** Headers to add (REST) or metadata (gRPC), e.g. delegation headers. */
  headers?: Record<string, string>;
}

/** How a client talks to a server; REST and gRPC implement it. */
export interface ClientTransport {
  infer(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): Promise<InferResponse>;
  stream(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): AsyncIterable<InferResponse>;
  isAlive(): Promise<boolean>;
  isModelReady(name: string, version?: string): Promise<boolean>;
  close(): Promise<void>;
}

export class Client {
  /** The transport once loaded (see {@link loadTransport}). */
  #transport: ClientTransport | undefined;
  #ready: Promise<ClientTransport>;
  /** The API server `#ready` calls (another user of a shared {@link ApiServers} may have moved on since). */
  #readyFor: string;
  readonly #options: ClientOptions;
  /** Where calls go: the endpoint, or the API servers in order, and which one is in use (util/api-servers.ts). */
  readonly #servers: ApiServers;
  /** Each target's transport, loaded on first use (with `direct`, one for all: it follows `#servers` itself). */
  readonly #loads = new Map<string, Promise<ClientTransport>>();
  readonly #direct: boolean;
  readonly #timeout: number;
  readonly #retry: boolean;

  constructor(options: ClientOptions) {
    const given = options.apiServer;
    const targets = options.endpoint !== undefined ? [options.endpoint] : given instanceof ApiServers ? given.urls : [given ?? []].flat();
    if (targets.length === 0 || !targets.every(Boolean)) throw new TypeError("Client needs apiServer or endpoint");
    this.#servers =
      given instanceof ApiServers && options.endpoint === undefined ? given : new ApiServers(targets, { logger: options.logger });
    this.#options = options;
    this.#timeout = options.timeout ?? 60_000;
    this.#retry = options.retry ?? true;
    if (options.direct && (options.apiServer === undefined || options.endpoint !== undefined || options.protocol === "grpc")) {
      throw new TypeError("Client: direct needs apiServer (its route table), without endpoint, over REST");
    }
    this.#direct = options.direct === true;
    this.#readyFor = this.#servers.current;
    this.#ready = this.#use(this.#readyFor);
  }

  /** The transport for `url` (loaded once); it becomes `#transport` when loaded if `url` is still the one in use. */
  #use(url: string): Promise<ClientTransport> {
    const key = this.#direct ? "" : url;
    let load = this.#loads.get(key);
    if (!load) {
      load = loadTransport(this.#options, url, this.#servers);
      this.#loads.set(key, load);
    }
    // Handled here; a failed load reaches the caller through the calls that wait for it.
    load.then(
      (t) => {
        if (this.#direct || this.#servers.current === url) this.#transport = t;
      },
      () => undefined,
    );
    return load;
  }

  /**
   * After a failed attempt on API server `failed`: when the failure says that API server is gone
   * or not ready, the next one takes this call's retry and later calls — unless a concurrent call
   * has moved on already. Other failures (a busy replica…) are retried where they happened.
   */
  #next(failed: string, err: unknown): Promise<ClientTransport> {
    const f = failoverOf(err);
    if (f !== undefined) this.#servers.moveFrom(failed, f.reason);
    return this.#follow();
  }

  /** `#ready` for the current API server (the direct transport follows it by itself). */
  #follow(): Promise<ClientTransport> {
    if (!this.#direct && this.#readyFor !== this.#servers.current) {
      this.#transport = undefined;
      this.#readyFor = this.#servers.current;
      this.#ready = this.#use(this.#readyFor);
    }
    return this.#ready;
  }

  /** With `direct`: the route table as this client has it (version, replicas, stream state); otherwise undefined. */
  routes(): RouteCacheState | undefined {
    if (!this.#direct) return undefined;
    const t = this.#transport as { routes?: () => RouteCacheState } | undefined;
    // Until the direct path has loaded there is no table yet, as right after it has.
    return t?.routes ? t.routes() : { version: 0, connected: false, replicas: [] };
  }

  /** Calls `capability` with `inputs` (an object of name → value, OIP tensors, or one value) and returns the decoded answer. */
  async infer(capability: CapabilityInput, inputs: unknown, options: InferOptions = {}): Promise<unknown> {
    return responseToValue(await this.inferRaw(capability, inputs, options));
  }

  /** Like {@link infer} but returns the whole OIP response. */
  inferRaw(capability: CapabilityInput, inputs: unknown, options: InferOptions = {}): Promise<InferResponse> {
    const { query, req } = this.#prepare(capability, inputs, options);
    const o = { ...options, timeout: options.timeout ?? this.#timeout };
    const t = this.#transport;
    let at = this.#servers.current;
    const first = t && at === this.#readyFor ? t.infer(query, req, o) : this.#follow().then((loaded) => loaded.infer(query, req, o));
    if (!this.#retry) return first;
    // The retry state is made only when a first attempt failed: the common call pays for nothing.
    const retries = new Retries(o.timeout, o.signal);
    const retry = async (err: unknown): Promise<InferResponse> => {
      if (!(await retries.again(err))) throw err;
      const next = await this.#next(at, err);
      at = this.#servers.current;
      return next.infer(query, req, { ...o, timeout: retries.remaining() }).catch(retry);
    };
    return first.catch(retry);
  }

  /** Streams the decoded chunks of a streaming capability; tried again (see `retry`) only until the first chunk arrives. */
  async *stream(capability: CapabilityInput, inputs: unknown, options: InferOptions = {}): AsyncIterable<unknown> {
    for await (const res of this.streamRaw(capability, inputs, options)) yield responseToValue(res);
  }

  /** Like {@link stream} but yields the whole OIP response of each chunk. */
  async *streamRaw(capability: CapabilityInput, inputs: unknown, options: InferOptions = {}): AsyncIterable<InferResponse> {
    const { query, req } = this.#prepare(capability, inputs, options);
    let at = this.#servers.current;
    let t = await this.#follow();
    let failure: unknown;
    const timeout = options.timeout ?? this.#timeout;
    const retries = new Retries(timeout, options.signal);
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        t = await this.#next(at, failure);
        at = this.#servers.current;
      }
      const o = { ...options, timeout: attempt === 0 ? timeout : retries.remaining() };
      let started = false;
      try {
        for await (const res of t.stream(query, req, o)) {
          started = true;
          yield res;
        }
        return;
      } catch (err) {
        if (started || !this.#retry || !(await retries.again(err))) throw err;
        failure = err;
      }
    }
  }

  async isAlive(): Promise<boolean> {
    return (this.#transport ?? (await this.#ready)).isAlive();
  }

  async isModelReady(name: string, version?: string): Promise<boolean> {
    return (this.#transport ?? (await this.#ready)).isModelReady(name, version);
  }

  async close(): Promise<void> {
    const all = await Promise.all([...this.#loads.values()].map((l) => l.catch(() => undefined)));
    await Promise.all(all.map((t) => t?.close()));
  }

  #prepare(capability: CapabilityInput, inputs: unknown, o: InferOptions): { query: CapabilityMap; req: InferRequest } {
    const query = normalizeCapability(capability, "capability");
    const req = inputsToRequest(inputs);
    if (o.parameters) req.parameters = { ...req.parameters, ...o.parameters };
    if (o.id !== undefined) req.id = o.id;
    return { query, req };
  }
}

/**
 * The transport the options ask for, loaded with `import()`: grpc-js, undici and the direct path
 * (route table, frame client, registration schema) load only in a process that uses them. A
 * worker's `ctx.call` client, for one, is made on its first call (sdk/caller.ts).
 */
async function loadTransport(options: ClientOptions, target: string, servers: ApiServers): Promise<ClientTransport> {
  const { inferenceToken, ca } = options;
  if (options.protocol === "grpc") {
    const { GrpcTransport } = await import("./client-grpc.js");
    return new GrpcTransport(target, { inferenceToken, ca });
  }
  const { RestTransport } = await import("./client-rest.js");
  const rest = (url: string): ClientTransport => new RestTransport(url, options.connections ?? 16, { inferenceToken, ca });
  if (!options.direct) return rest(target);
  // One direct transport for all the API servers: its route watch and its way through an API
  // server both follow `servers` (the watch moves it too when its stream dies).
  const { DirectTransport } = await import("./direct/direct-transport.js");
  return new DirectTransport({ apiServers: servers, token: options.token, inferenceToken, ca, fallback: new FollowCurrent(servers, rest) });
}

/** Calls through whichever API server is current, with one REST transport per API server (made on first use). */
class FollowCurrent implements ClientTransport {
  readonly #servers: ApiServers;
  readonly #make: (url: string) => ClientTransport;
  readonly #made = new Map<string, ClientTransport>();

  constructor(servers: ApiServers, make: (url: string) => ClientTransport) {
    this.#servers = servers;
    this.#make = make;
  }

  infer(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): Promise<InferResponse> {
    return this.#now().infer(query, req, o);
  }

  stream(query: CapabilityMap, req: InferRequest, o: InferOptions & { timeout: number }): AsyncIterable<InferResponse> {
    return this.#now().stream(query, req, o);
  }

  isAlive(): Promise<boolean> {
    return this.#now().isAlive();
  }

  isModelReady(name: string, version?: string): Promise<boolean> {
    return this.#now().isModelReady(name, version);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#made.values()].map((t) => t.close()));
  }

  #now(): ClientTransport {
    const url = this.#servers.current;
    let t = this.#made.get(url);
    if (t === undefined) {
      t = this.#make(url);
      this.#made.set(url, t);
    }
    return t;
  }
}
