/** Shared pieces of the execution tests: the fixture app, tasks, answers, marker files. */
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { ExecutionStrategy, StrategyOptions } from "../../src/execution/base.js";
import { createExecution } from "../../src/execution/index.js";
import { Lane } from "../../src/execution/lane.js";
import type { Task } from "../../src/execution/task.js";
import { decodeResponse, encodeRequest } from "../../src/protocol/codec.js";
import type { EncodedBody } from "../../src/protocol/types.js";
import { inputsToRequest, responseToValue } from "../../src/protocol/values.js";
import type { AnyServe } from "../../src/sdk/app.js";
import { loadApp } from "../../src/sdk/load-app.js";
import { silentLogger } from "../../src/util/logger.js";
import { FIXTURES, waitFor } from "../helpers/processes.js";
import { markerDir } from "../fixtures/exec_marks.js";

export const EXEC_APP = path.join(FIXTURES, "exec_app.ts:app");
export const logger = silentLogger;

let loaded: Promise<AnyServe> | undefined;
export function execApp(): Promise<AnyServe> {
  return (loaded ??= loadApp(EXEC_APP));
}

export function handlerIndex(app: AnyServe, type: string): number {
  const i = app.handlers.findIndex((h) => h.capability.type === type);
  if (i < 0) throw new Error(`exec_app has no handler of type ${type}`);
  return i;
}

let seq = 0;
const made: string[] = [];
// Marker directories live in the temp directory; none outlives the test file.
process.once("exit", () => {
  for (const id of made) rmSync(markerDir(id), { recursive: true, force: true });
});

/** A replica id no other test uses (its marker directory starts empty). */
export function freshReplicaId(tag: string): string {
  const id = `t${process.pid}-${tag}-${++seq}`;
  rmSync(markerDir(id), { recursive: true, force: true });
  made.push(id);
  return id;
}

/** A fixture app for the execution tests: its spec, and how to load it (once). */
export interface FixtureApp {
  spec: string;
  load(): Promise<AnyServe>;
}

/** The TypeScript fixture (exec_app.ts), the default. */
export const TS_EXEC_APP: FixtureApp = { spec: EXEC_APP, load: execApp };

let pyLoaded: Promise<AnyServe> | undefined;
/** The same handlers in Python (fixtures/python/exec_app.py), run by Python workers. */
export const PY_EXEC_APP: FixtureApp = {
  spec: path.join(FIXTURES, "python", "exec_app.py:app"),
  load: () => (pyLoaded ??= loadApp(path.join(FIXTURES, "python", "exec_app.py:app"))),
};

/** Strategy options for handler `type` of the fixture app. */
export async function strategyOptions(
  type: string,
  extra: Partial<StrategyOptions> & { replicaId?: string } = {},
  fixture: FixtureApp = TS_EXEC_APP,
): Promise<StrategyOptions> {
  const app = await fixture.load();
  const { replicaId = freshReplicaId(type), ...rest } = extra;
  return {
    env: { app, replicaId, logger },
    handler: handlerIndex(app, type),
    appSpec: fixture.spec,
    threads: 1,
    graceMs: 300,
    startRetries: 3,
    poolIdleMs: 60_000,
    ...rest,
  };
}

/** A started lane of `strategy` for handler `type` of the fixture with `threads` workers (pushed to `lanes`, for the caller to stop). */
export async function warmLane(lanes: Lane[], strategy: string, type: string, threads: number, fixture?: FixtureApp): Promise<Lane> {
  const { env, handler, onFailed: _f, ...rest } = await strategyOptions(type, { threads, maxThreads: threads }, fixture);
  const l = new Lane({
    entry: env.app.handlers[handler]!,
    handler,
    execution: createExecution(strategy, { env, ...rest }),
    queueSize: 1000,
    batchSize: 1,
    batchWaitMs: 5,
    idleTimeoutMs: 300_000,
    logger,
    onState: () => undefined,
  });
  lanes.push(l);
  await l.start();
  return l;
}

/** `n` calls with `inputs` at once on a lane: how long they took together, and who answered. */
export async function atOnce(l: Lane, n: number, inputs: Record<string, unknown>): Promise<{ ms: number; who: Set<unknown> }> {
  const t0 = performance.now();
  const outs = await Promise.all(Array.from({ length: n }, () => l.run(task(inputs), never())));
  return { ms: performance.now() - t0, who: new Set(outs.map(answer)) };
}

let rid = 0;
/** A task carrying `inputs` as a JSON body, due in `ms`. */
export function task(
  inputs: Record<string, unknown>,
  o: { ms?: number; parameters?: Record<string, number | string | boolean> } = {},
): Task {
  const req = inputsToRequest(inputs);
  if (o.parameters) req.parameters = { ...req.parameters, ...o.parameters };
  return { call: { q: {}, f: "json", rid: `r${++rid}`, dl: Date.now() + (o.ms ?? 10_000) }, body: encodeRequest(req, "json").body };
}

export function answer(out: EncodedBody): unknown {
  return responseToValue(
    decodeResponse(out.body, {
      contentType: out.contentType,
      ...(out.headerLength !== undefined ? { headerLength: out.headerLength } : {}),
    }),
  );
}

/** Lines of a marker file written by the fixture's hooks (empty when absent). */
export function marks(replicaId: string, file: string): string[] {
  const p = path.join(markerDir(replicaId), file);
  return existsSync(p) ? readFileSync(p, "utf8").split("\n").filter(Boolean) : [];
}

export const never = (): AbortSignal => new AbortController().signal;

/**
 * A started pool of `replicaId` (thread_count 1, max_thread_count 3, a short idle time): three
 * jobs keeping every worker busy grow it, idle it shrinks back to one, and every worker that left
 * ran the fixture's stop hook (its start and stop lines in do.log) — for a pool of threads or of
 * processes alike.
 */
export async function checkPoolGrowsAndShrinks(p: ExecutionStrategy, replicaId: string): Promise<void> {
  assert.equal(p.stats().workers.warm, 1);
  const busy = Array.from({ length: 3 }, () => p.submit(task({ op: "sleep", ms: 1_500 }), never()));
  await waitFor("the pool to grow", () => p.stats().workers.starting + p.stats().workers.warm >= 2);
  await Promise.all(busy);
  await waitFor("the pool to shrink back to thread_count", () => p.stats().workers.warm === 1 && p.stats().workers.starting === 0, 15_000);
  // The stop hook runs in each worker that leaves; its mark lands shortly after the stats change.
  const counts = () => {
    const log = marks(replicaId, "do.log");
    return { log, started: log.filter((l) => l.startsWith("start ")).length, stopped: log.filter((l) => l.startsWith("stop ")).length };
  };
  await waitFor(
    "the stop hook in every worker that left",
    () => {
      const c = counts();
      return c.started >= 2 && c.stopped === c.started - 1;
    },
    15_000,
  ).catch(() => undefined);
  const { log, started, stopped } = counts();
  assert.ok(started >= 2, log.join("; "));
  assert.equal(stopped, started - 1, log.join("; "));
}

export interface Reply {
  status: number;
  /** The answer as a JS value (200), or the error's code and message. */
  value?: unknown;
  code?: string;
  error?: string;
  retryAfter: string | null;
  ms: number;
}

/** POSTs `inputs` to `${base}/infer` for capability `query` (REST, JSON) and reads the answer. */
export async function infer(
  base: string,
  query: Record<string, string>,
  inputs: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const caps = Object.fromEntries(Object.entries(query).map(([k, v]) => [`x-capability-${k}`, v]));
  const t0 = performance.now();
  const res = await fetch(`${base}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", ...caps, ...headers },
    body: new Uint8Array(encodeRequest(inputsToRequest(inputs), "json").body),
  });
  const body = Buffer.from(await res.arrayBuffer());
  const ms = performance.now() - t0;
  const retryAfter = res.headers.get("retry-after");
  if (res.status !== 200) {
    const e = JSON.parse(body.toString()) as { code: string; error: string };
    return { status: res.status, code: e.code, error: e.error, retryAfter, ms };
  }
  return { status: 200, value: responseToValue(decodeResponse(body, { contentType: "application/json" })), retryAfter, ms };
}

/** GET/POST a replica's worker routes. */
export async function workersRoute(
  base: string,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The registry's state of capability `query` on replica `replicaId` (warm, cold, failed), read from the API server (with its token, if any). */
export async function registryState(
  api: string,
  replicaId: string,
  query: Record<string, string>,
  token?: string,
): Promise<string | undefined> {
  const res = await fetch(`${api}/registry`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const { replicas } = (await res.json()) as {
    replicas: { replica_id: string; capabilities: Record<string, string>[]; states: string[] }[];
  };
  const r = replicas.find((x) => x.replica_id === replicaId);
  const i = r?.capabilities.findIndex((c) => Object.entries(query).every(([k, v]) => c[k] === v)) ?? -1;
  return i >= 0 ? r!.states[i] : undefined;
}
