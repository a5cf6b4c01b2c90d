// The seeded fuzz campaign (issue 25): mutated HTTP/1.1 requests (test/helpers/http-fuzz.ts) to
// every route of the API server on node:http, of one behind the fast ingress and of a replica's
// own REST port, and malformed gRPC calls (test/helpers/grpc-fuzz.ts) to every method of the API
// server's and the replica's gRPC ports; real processes. Malformed input must never get a 5xx
// other than 503/504/507, every answer must be well-formed HTTP with the catalogue's JSON error
// body (or a gRPC status carrying `x-anyserve-code`), every process must stay up and its memory
// bounded. The count fits CI; `ANYSERVE_FUZZ_CASES=20000` runs a heavier campaign (HTTP cases per
// server; a third as many gRPC calls per server) and `ANYSERVE_FUZZ_SEED` another one. A failure
// prints the seed and the cases, to replay with `caseAt` / `grpcCaseAt`.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { after, before, describe, test } from "node:test";
import { GRPC_METHODS, grpcCaseAt, grpcExchange } from "../helpers/grpc-fuzz.js";
import { caseAt, codeOf, exchange, type Exchange, type FuzzCase, FUZZ_ENV, inferenceRoutes, type RouteSpec } from "../helpers/http-fuzz.js";
import { Cleanups, FIXTURES, registryIds, startCli, waitFor, type Proc } from "../helpers/processes.js";
import { rssMb } from "../helpers/slow-clients.js";

const SEED = Number(process.env.ANYSERVE_FUZZ_SEED ?? 2025);
const HTTP_CASES = Number(process.env.ANYSERVE_FUZZ_CASES ?? 300);
const GRPC_CASES = Math.max(GRPC_METHODS.length * 10, Math.ceil(HTTP_CASES / 3));
/** Cases in flight at once per server. */
const PARALLEL = 4;
/** Growth of a server's resident size over the campaign (MB): a leak per case would show as far more at the heavy count. */
const RSS_GROWTH_MB = 120;
/** 5xx answers that are not the server's fault: overloaded, timed out, out of capacity. */
const ALLOWED_5XX = new Set([503, 504, 507]);
/** gRPC codes that mean the server failed (INTERNAL, UNKNOWN, DATA_LOSS). */
const SERVER_FAULT = new Set([grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.DATA_LOSS]);

const APP = `${FIXTURES}/fuzz_app.ts:app`;
const JSON_CT: [string, string] = ["Content-Type", "application/json"];
const REGISTRATION = JSON.stringify({ replica_id: "fuzz", endpoint: "127.0.0.1:9", capabilities: [{ type: "fuzz" }] });
/** The API server's own routes (GET /routes/watch is left out: it is a stream that never ends, so a case never completes). */
const API_ROUTES: RouteSpec[] = inferenceRoutes([
  ...[
    "/registry",
    "/health",
    "/metrics",
    "/routes",
    "/route?type=echo",
    "/api/stats",
    "/api/services",
    "/api/replicas",
    "/api/nodes",
    "/dashboard",
  ].map((path) => ({ method: "GET", path })),
  { method: "POST", path: "/register", headers: [JSON_CT], body: REGISTRATION.replace('"fuzz"', "1") },
  { method: "POST", path: "/heartbeat", headers: [JSON_CT], body: '{"replica_id":"nobody"}' },
  { method: "DELETE", path: "/unregister", headers: [JSON_CT], body: '{"replica_id":"nobody"}' },
]);
/** A replica's own routes (POST /workers/stop|start are left out: a valid one would stop the workers under test). */
const REPLICA_ROUTES: RouteSpec[] = inferenceRoutes(
  ["/health", "/metrics", "/config", "/workers"].map((path) => ({ method: "GET", path })),
);

const hooks = new Cleanups();
let api: Proc;
let fast: Proc;
let replica: Proc;
let fastReplica: Proc;

/** What is wrong with a server's handling of a case; empty when nothing is. */
function httpProblems(c: FuzzCase, e: Exchange): string[] {
  const out: string[] = [];
  if (e.timedOut) out.push("no answer and no close in time");
  if (!c.fin && e.replies.length === 0 && !e.timedOut) out.push("closed without an answer");
  // A request that does not parse gets the catalogue's body even when its method was HEAD (it was
  // never taken as a HEAD request): the body is then left over, and the connection closes after it.
  const last = e.replies.at(-1);
  const headRefused = last !== undefined && c.methods[e.replies.length - 1] === "HEAD" && last.headers.connection === "close";
  if (e.closed && e.leftover > 0 && !headRefused) out.push(`${e.leftover} bytes that are not an HTTP answer`);
  e.replies.forEach((r, i) => {
    if (r.status < 0 || r.headers["!malformed"] !== undefined) out.push(`answer ${i} is not well-formed HTTP/1.1`);
    if (r.status >= 500 && !ALLOWED_5XX.has(r.status))
      out.push(`answer ${i} is ${r.status} ${codeOf(r) ?? ""}: ${r.body.toString().slice(0, 160)}`);
    if (r.status >= 400 && c.methods[i] !== "HEAD" && codeOf(r) === undefined)
      out.push(`answer ${i} (${r.status}) has no catalogue body: ${JSON.stringify(r.body.toString("latin1").slice(0, 80))}`);
  });
  return out;
}

/** Runs `count` cases with PARALLEL in flight; returns the failures, described. */
async function campaign(count: number, run: (i: number) => Promise<string | undefined>): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const f = await run(i);
      if (f !== undefined) failures.push(f);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return failures.sort();
}

function assertHealthy(procs: Proc[], base: Map<Proc, number>): void {
  for (const p of procs) {
    assert.equal(p.child.exitCode, null, `${p.ready.role ?? "process"} is alive`);
    const growth = rssMb(p.child.pid!) - base.get(p)!;
    assert.ok(growth < RSS_GROWTH_MB, `${p.ready.role ?? "process"} grew ${growth.toFixed(0)} MB over the campaign`);
  }
}

function report(what: string, failures: string[], count: number, replay: string): string {
  return `${what}: ${failures.length} of ${count} cases failed (seed ${SEED}; replay with ${replay}):\n${failures.slice(0, 25).join("\n")}`;
}

describe("fuzz campaign", () => {
  const base = new Map<Proc, number>();
  before(async () => {
    [api, fast] = (await Promise.all(
      [[], ["--fast-ingress"]].map((extra) => startCli(hooks, ["api-server", "--port", "0", "--grpc-port", "0", ...extra], FUZZ_ENV)),
    )) as [Proc, Proc];
    [replica, fastReplica] = (await Promise.all(
      [api, fast].map((s) => startCli(hooks, ["start", "--app", APP, "--port", "0", "--api-server", s.ready.url!], FUZZ_ENV)),
    )) as [Proc, Proc];
    await waitFor(
      "the replicas registered",
      async () => (await registryIds(api.ready.url!)).length === 1 && (await registryIds(fast.ready.url!)).length === 1,
    );
    for (const p of [api, fast, replica, fastReplica]) base.set(p, rssMb(p.child.pid!));
  });
  after(() => hooks.run());

  test(`HTTP: ${HTTP_CASES} seeded cases to each of the API server (node:http, fast ingress) and a replica (seed ${SEED})`, async () => {
    const targets: [string, Proc, string, RouteSpec[]][] = [
      ["API server (node:http)", api, api.ready.url!, API_ROUTES],
      ["API server (fast ingress)", fast, fast.ready.url!, API_ROUTES],
      ["replica", replica, replica.ready.http!, REPLICA_ROUTES],
    ];
    const results = await Promise.all(
      targets.map(async ([what, , url, routes]) => {
        const port = Number(new URL(url).port);
        const failures = await campaign(HTTP_CASES, async (i) => {
          const c = caseAt(SEED, routes, i);
          const problems = httpProblems(c, await exchange(port, c));
          return problems.length === 0 ? undefined : `case ${i} (${c.name}): ${problems.join("; ")}`;
        });
        return report(what, failures, HTTP_CASES, `caseAt(${SEED}, routes, i)`);
      }),
    );
    assertHealthy([api, fast, replica, fastReplica], base);
    const failed = results.filter((r) => !r.includes(": 0 of"));
    assert.deepEqual(failed, []);
  });

  test(`gRPC: ${GRPC_CASES} malformed calls to each of the API server's and the replica's ports (seed ${SEED})`, async () => {
    const targets: [string, string][] = [
      ["API server", api.ready.grpc!],
      ["replica", replica.ready.grpc!],
    ];
    const results = await Promise.all(
      targets.map(async ([what, address]) => {
        const client = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": 64 << 20 });
        try {
          const failures = await campaign(GRPC_CASES, async (i) => {
            const c = grpcCaseAt(SEED, i);
            const o = await grpcExchange(client, c);
            const problems: string[] = [];
            if (SERVER_FAULT.has(o.code)) problems.push(`${grpc.status[o.code]}: ${o.details.slice(0, 160)}`);
            // grpc-js refuses a message over the receive limit before any handler runs: its status
            // cannot carry anyserve's code.
            const bySizeLimit = o.code === grpc.status.RESOURCE_EXHAUSTED && /larger than max/i.test(o.details);
            if (o.code !== grpc.status.OK && o.anyserveCode === undefined && !bySizeLimit)
              problems.push(`${grpc.status[o.code]} without x-anyserve-code: ${o.details.slice(0, 160)}`);
            return problems.length === 0 ? undefined : `case ${i} (${c.name}): ${problems.join("; ")}`;
          });
          return report(what, failures, GRPC_CASES, `grpcCaseAt(${SEED}, i)`);
        } finally {
          client.close();
        }
      }),
    );
    assertHealthy([api, fast, replica, fastReplica], base);
    const failed = results.filter((r) => !r.includes(": 0 of"));
    assert.deepEqual(failed, []);
  });
});
