/**
 * `process` workers: child processes (worker-process.ts) that connect back over a Unix socket and
 * speak the framed worker protocol. The socket lives in a fresh 0700 temp directory; each child
 * proves who it is with a random key in its HELLO. The child's environment is minimal and
 * explicit — never the replica's token.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { workerEntry, type SpawnWorker, type WorkerHandle } from "./handle.js";
import { readFrames, SocketOutbox } from "./socket-port.js";
import { Msg, type Meta } from "./worker-protocol.js";
import type { ObjectStoreOptions } from "../objects/types.js";
import type { WorkerService } from "./base.js";

/** Passed to every child when set; anything else only when named in `workerEnv`. */
const BASE_ENV = [
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "TZ",
  "TMPDIR",
  "NODE_ENV",
  "NODE_EXTRA_CA_CERTS",
  "ANYSERVE_LOG_LEVEL",
  "ANYSERVE_SERVICE",
];
/** Never passed, even when named. */
const SECRET_ENV = new Set(["ANYSERVE_TOKEN"]);
const OOM = /heap out of memory|Reached heap limit/i;

/**
 * A worker program other than this Node running worker-process.ts (a Python interpreter running
 * `anyserve.worker`): what to run, environment to add, names passed through besides the minimal
 * set, and how its stderr says it ran out of memory.
 */
export interface WorkerCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
  passEnv: readonly string[];
  oom: RegExp;
  /** The exit code the program uses when it ran out of memory. */
  oomExitCode?: number;
}

export interface ProcessSpawnOptions {
  appSpec: string;
  replicaId: string;
  apiServer?: string | readonly string[] | undefined;
  memoryMb?: number | undefined;
  workerEnv?: readonly string[] | undefined;
  /** The object store to open in the child, without its token (children never get secrets). */
  objects?: ObjectStoreOptions | undefined;
  /** Run this instead of a Node worker. */
  command?: WorkerCommand | undefined;
  service?: WorkerService | undefined;
}

const entry = workerEntry(import.meta.url, "worker-process");

class ProcessHandle implements WorkerHandle {
  readonly name: string;
  readonly transfersBodies = false;
  readonly child: ChildProcess;
  #out: SocketOutbox | undefined;
  #early: [number, number, Meta, Buffer | undefined][] = [];
  #stderrTail = "";
  readonly #ended = new AbortController();
  onMessage: WorkerHandle["onMessage"] = () => undefined;
  onExit: WorkerHandle["onExit"] = () => undefined;

  constructor(
    name: string,
    readonly key: string,
    child: ChildProcess,
    oomPattern: RegExp = OOM,
    oomExitCode?: number,
  ) {
    this.name = name;
    this.child = child;
    child.stderr?.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      this.#stderrTail = (this.#stderrTail + chunk.toString("utf8")).slice(-4096);
    });
    let ended = false;
    child.once("exit", (code, signal) => {
      this.#ended.abort();
      if (ended) return;
      ended = true;
      const oom = oomPattern.test(this.#stderrTail) || (oomExitCode !== undefined && code === oomExitCode);
      this.onExit(
        oom
          ? { reason: "oom", detail: `worker process ${name} (pid ${child.pid}) went over its memory limit` }
          : { reason: "exit", detail: `worker process ${name} (pid ${child.pid}) exited with ${signal ?? `code ${code}`}` },
      );
    });
    // A program that cannot be started (ENOENT) may never emit 'exit'.
    child.once("error", (err) => {
      if (ended || child.pid !== undefined) return;
      ended = true;
      this.#ended.abort();
      this.onExit({ reason: "exit", detail: `worker process ${name} could not be started: ${err.message}` });
    });
  }

  /** Fires when the child has exited: the streams the replica relays to it stop (worker-requests.ts). */
  get ended(): AbortSignal {
    return this.#ended.signal;
  }

  attach(socket: Socket): void {
    this.#out = new SocketOutbox(socket);
    for (const m of this.#early.splice(0)) this.#out.send(...m);
  }

  send(type: number, id: number, meta: Meta, body?: Buffer): void {
    if (this.#out) this.#out.send(type, id, meta, body);
    else this.#early.push([type, id, meta, body]);
  }

  terminate(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

/** One socket server per strategy; `spawn` starts children that connect to it. */
export class ProcessSpawner {
  readonly #o: ProcessSpawnOptions;
  readonly #dir = mkdtempSync(path.join(os.tmpdir(), "anyserve-w-"));
  readonly #path = path.join(this.#dir, "workers.sock");
  readonly #pending = new Map<string, ProcessHandle>();
  readonly #server: Server;

  constructor(o: ProcessSpawnOptions) {
    this.#o = o;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#path, () => resolve());
    });
  }

  readonly spawn: SpawnWorker = (name) => {
    const key = randomBytes(16).toString("hex");
    const command = this.#o.command;
    const child = command
      ? spawn(command.file, command.args, { env: { ...this.#env(name, key), ...command.env }, stdio: ["ignore", "inherit", "pipe"] })
      : spawn(process.execPath, this.#nodeArgs(), { env: this.#env(name, key), stdio: ["ignore", "inherit", "pipe"] });
    const handle = new ProcessHandle(name, key, child, command?.oom, command?.oomExitCode);
    this.#pending.set(handle.key, handle);
    child.once("exit", () => this.#pending.delete(handle.key));
    return handle;
  };

  #nodeArgs(): string[] {
    const args: string[] = [];
    if (this.#o.memoryMb) args.push(`--max-old-space-size=${this.#o.memoryMb}`);
    if (entry.typescript) args.push("--import", import.meta.resolve("tsx"));
    args.push(fileURLToPath(entry.url));
    return args;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #env(name: string, key: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const k of [...BASE_ENV, ...(this.#o.command?.passEnv ?? []), ...(this.#o.workerEnv ?? [])]) {
      if (process.env[k] !== undefined && !SECRET_ENV.has(k)) env[k] = process.env[k];
    }
    Object.assign(env, {
      ANYSERVE_WORKER_SOCKET: this.#path,
      ANYSERVE_WORKER_NAME: name,
      ANYSERVE_WORKER_KEY: key,
      ANYSERVE_WORKER_APP: this.#o.appSpec,
      ANYSERVE_WORKER_REPLICA_ID: this.#o.replicaId,
      // Several API servers: comma-separated (a URL has no comma in its origin).
      ...(this.#o.apiServer ? { ANYSERVE_API_SERVER: [this.#o.apiServer].flat().join(",") } : {}),
      ...(this.#o.objects ? { ANYSERVE_WORKER_OBJECTS: JSON.stringify({ ...this.#o.objects, token: undefined }) } : {}),
      ...(this.#o.service
        ? { ANYSERVE_SERVICE: this.#o.service.name, ANYSERVE_WORKER_SERVICE_ARGS: JSON.stringify(this.#o.service.args) }
        : {}),
    });
    return env;
  }

  /** The first frame must be HELLO with a key we handed out; anything else is dropped. */
  #accept(socket: Socket): void {
    let handle: ProcessHandle | undefined;
    readFrames(socket, (type, id, meta, body) => {
      if (handle) return handle.onMessage(type, id, meta, body);
      const key = typeof meta?.key === "string" ? meta.key : "";
      const found = type === Msg.HELLO ? this.#pending.get(key) : undefined;
      if (!found) return socket.destroy();
      this.#pending.delete(key);
      handle = found;
      handle.attach(socket);
    });
    socket.on("error", () => undefined);
  }
}
