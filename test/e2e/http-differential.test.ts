// The fast ingress and node:http give the same answers to the same bytes (issue 25 #11): seeded
// cases from the HTTP fuzzer (valid requests to every REST route of the API server, mutated —
// methods, paths, header counts and sizes, GET with a body, chunking, pipelined junk, truncation)
// are sent as raw bytes to an API server on node:http and to one behind the fast ingress, each with
// a replica of the same app (real processes); the status and catalogue code of every answer, in
// order, must agree. `ANYSERVE_FUZZ_CASES` runs more cases, `ANYSERVE_FUZZ_SEED` another campaign;
// a failure prints the seed and the case to replay with `caseAt(seed, routes, index)`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { caseAt, codeOf, exchange, FUZZ_ENV, type Exchange, type FuzzCase, inferenceRoutes, type RouteSpec } from "../helpers/http-fuzz.js";
import { Cleanups, FIXTURES, registryIds, startCli, waitFor, type Proc } from "../helpers/processes.js";

const SEED = Number(process.env.ANYSERVE_FUZZ_SEED ?? 2511);
const CASES = Number(process.env.ANYSERVE_FUZZ_CASES ?? 500);
/** Cases in flight at once (each on its own connection, to both servers). */
const PARALLEL = 8;

const APP = `${FIXTURES}/fuzz_app.ts:app`;
const ROUTES: RouteSpec[] = inferenceRoutes([
  { method: "GET", path: "/registry" },
  { method: "GET", path: "/health" },
  { method: "GET", path: "/metrics" },
]);

const hooks = new Cleanups();
let plain: Proc;
let fast: Proc;

/** What is compared: each answer's status and catalogue code, and whether the server answered in time. */
function verdict(e: Exchange): string {
  return `[${answers(e).join(", ")}]${e.timedOut ? " no answer in time" : ""}`;
}

function answers(e: Exchange): string[] {
  return e.replies.map((r) => `${r.status}${codeOf(r) === undefined ? "" : ` ${codeOf(r)}`}`);
}

/**
 * Whether two servers' answers to a case agree: the same, in order — except that a client which
 * half-closes right after its bytes has left (node:http's `httpAllowHalfOpen` is false, and the fast
 * ingress takes a FIN the same way), so how many answers were written before its FIN was read is
 * a race; one list must then be the start of the other.
 */
function agree(c: FuzzCase, a: Exchange, b: Exchange): boolean {
  if (verdict(a) === verdict(b)) return true;
  if (!c.fin || a.timedOut || b.timedOut) return false;
  const [x, y] = [answers(a), answers(b)].sort((p, q) => p.length - q.length) as [string[], string[]];
  return x.every((v, i) => v === y[i]);
}

describe("fast ingress vs node:http: the same bytes, the same answers", () => {
  before(async () => {
    [plain, fast] = (await Promise.all(
      [[], ["--fast-ingress"]].map((extra) => startCli(hooks, ["api-server", "--port", "0", ...extra], FUZZ_ENV)),
    )) as [Proc, Proc];
    await Promise.all([plain, fast].map((s) => startCli(hooks, ["start", "--app", APP, "--port", "0", "--api-server", s.ready.url!])));
    await waitFor(
      "the replicas registered",
      async () => (await registryIds(plain.ready.url!)).length === 1 && (await registryIds(fast.ready.url!)).length === 1,
    );
  });
  after(() => hooks.run());

  test(`${CASES} seeded cases (seed ${SEED})`, async () => {
    const ports = [plain, fast].map((p) => Number(new URL(p.ready.url!).port)) as [number, number];
    const differ: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < CASES; i = next++) {
        const c = caseAt(SEED, ROUTES, i);
        const [a, b] = await Promise.all(ports.map((p) => exchange(p, c)));
        if (!agree(c, a!, b!)) differ.push(`case ${i} (${c.name}): node:http ${verdict(a!)}, fast ingress ${verdict(b!)}`);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    for (const p of [plain, fast]) assert.equal(p.child.exitCode, null, "the API server is alive");
    assert.deepEqual(
      differ.sort(),
      [],
      `the ingresses disagree on ${differ.length} of ${CASES} cases; replay with ANYSERVE_FUZZ_SEED=${SEED} (caseAt(${SEED}, routes, i))`,
    );
  });
});
