/** Shared pieces of the execution tests: the fixture app, tasks, answers, marker files. */
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { StrategyOptions } from "../../src/execution/base.js";
import type { Task } from "../../src/execution/task.js";
import { decodeResponse, encodeRequest } from "../../src/protocol/codec.js";
import type { EncodedBody } from "../../src/protocol/types.js";
import { inputsToRequest, responseToValue } from "../../src/protocol/values.js";
import type { AnyServe } from "../../src/sdk/app.js";
import { loadApp } from "../../src/sdk/load-app.js";
import { silentLogger } from "../../src/util/logger.js";
import { FIXTURES } from "../helpers/processes.js";
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

/** Strategy options for handler `type` of the fixture app. */
export async function strategyOptions(
  type: string,
  extra: Partial<StrategyOptions> & { replicaId?: string } = {},
): Promise<StrategyOptions> {
  const app = await execApp();
  const { replicaId = freshReplicaId(type), ...rest } = extra;
  return {
    env: { app, replicaId, logger },
    handler: handlerIndex(app, type),
    appSpec: EXEC_APP,
    threads: 1,
    graceMs: 300,
    startRetries: 3,
    poolIdleMs: 60_000,
    ...rest,
  };
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
