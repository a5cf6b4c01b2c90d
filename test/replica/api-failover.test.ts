// A replica's own calls to the API server fail over when the first API server dies
// (util/api-servers.ts): real processes on loopback, port 0. Two API servers; replica B serves
// `host=b` (`where`, `obj_put`); four replicas serve `host=a`, each given both API servers, api1
// first, each with its own object directory (objects of B are fetched from B, found through the
// registry). api1 is SIGKILLed; then each A replica's first use of an API server is a different
// path, so each path's own failover is what answers:
//   a_watch (direct calls on, the default): its route watch stream ends and moves to api2 by itself;
//   a_deleg (direct calls off): a request it cannot serve, delegated;
//   a_obj   (direct calls off): a read of an object B owns (owner looked up in the registry);
//   a_call  (direct calls off): a handler's ctx.call to B.
// Then requests through api2 and straight to each A replica — ctx.call, delegation, object read —
// all succeed (none lost), and each replica logged its switch once.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client } from "../../src/sdk/client.js";
import { Cleanups, waitFor, type Proc } from "../helpers/processes.js";
import { registry, startAppReplica, startTwoApiServers, waitRegistered } from "../helpers/two-api-servers.js";

const A_REPLICAS = ["a_watch", "a_deleg", "a_obj", "a_call"] as const;
type AName = (typeof A_REPLICAS)[number];
const SWITCH = "API server failed: using the next one";

const hooks = new Cleanups();
const procs: Partial<Record<"api1" | "api2" | "b" | AName, Proc>> = {};
const api = { api1: "", api2: "" };
/** Each A replica's REST endpoint. */
const aUrl: Partial<Record<AName, string>> = {};

/** The switch lines a replica logged (pino JSON on stdout at warn). */
function switches(p: Proc): { from: string; to: string; reason: string }[] {
  return p.output.filter((l) => l.includes(SWITCH)).map((l) => JSON.parse(l) as { from: string; to: string; reason: string });
}

function client(t: { after: (fn: () => unknown) => void }, o: { apiServer?: string; endpoint?: string }): Client {
  // retry: false: an answer here is the replica's own doing, not this client's retrying.
  const c = new Client({ ...o, direct: false, retry: false, timeout: 15_000 });
  t.after(() => c.close());
  return c;
}

describe("a replica's ctx.call, delegation, object look-ups and route watch fail over to the next API server", () => {
  before(async () => {
    const apis = await startTwoApiServers(hooks);
    Object.assign(procs, apis.procs);
    Object.assign(api, apis.urls);
    const replica = (service: string, env: NodeJS.ProcessEnv) =>
      startAppReplica(hooks, service, `replica-${service}`, [api.api1, api.api2], { env });
    const started = await Promise.all([
      replica("host_b", {}),
      ...A_REPLICAS.map((name) => replica(name, name === "a_watch" ? {} : { ANYSERVE_DIRECT_CALLS: "0" })),
    ]);
    procs.b = started[0];
    A_REPLICAS.forEach((name, i) => {
      procs[name] = started[i + 1];
    });
    await waitRegistered([api.api1, api.api2], 5, 30_000);
    for (const r of await registry(api.api2)) {
      const name = r.replica_id.replace("replica-", "") as AName;
      if (A_REPLICAS.includes(name)) aUrl[name] = r.http_endpoint;
    }
  });
  after(() => hooks.run());

  test("before: the A replicas work through api1 (a_watch's route watch is open there)", async (t) => {
    const c = client(t, { apiServer: api.api1 });
    assert.equal(await c.infer({ type: "where", host: "b" }, {}), "replica-host_b");
    // a_watch's first ctx.call opens its route table's watch on api1 (its first API server).
    const atWatch = client(t, { endpoint: aUrl.a_watch! });
    assert.deepEqual(await atWatch.infer({ type: "call_other", host: "a" }, {}), { caller: "replica-a_watch", callee: "replica-host_b" });
    for (const name of A_REPLICAS) assert.deepEqual(switches(procs[name]!), [], `${name} has not switched yet`);
  });

  test("api1 SIGKILLed: each path fails over on its own, then everything answers through api2 and at A; none lost", async (t) => {
    procs.api1!.child.kill("SIGKILL");
    assert.equal((await procs.api1!.exited).signal, "SIGKILL");
    // api2 keeps the full registry (polled: the replicas heartbeat it throughout).
    await waitFor("api2 holds all 5 replicas", async () => (await registry(api.api2)).length === 5, 10_000, 50);

    // a_watch: its route watch stream ended with api1; it moves to api2 with no request sent.
    await waitFor("a_watch's route watch moved to api2", () => switches(procs.a_watch!).length > 0, 10_000, 20);
    const [moved] = switches(procs.a_watch!);
    assert.equal(moved!.from, api.api1);
    assert.equal(moved!.to, api.api2);
    assert.match(moved!.reason, /^route watch: /);

    const viaApi2 = client(t, { apiServer: api.api2 });
    const ref = String(await viaApi2.infer({ type: "obj_put", host: "b" }, { text: "owned by b" }));
    // The first use of an API server by each of the other three, each a different path.
    const at = (name: AName) => client(t, { endpoint: aUrl[name]! });
    assert.equal(await at("a_deleg").infer({ type: "where", host: "b" }, {}), "replica-host_b", "delegated through api2");
    assert.equal(await at("a_obj").infer({ type: "obj_get", host: "a" }, { ref }), "owned by b", "owner found in api2's registry");
    assert.deepEqual(await at("a_call").infer({ type: "call_other", host: "a" }, {}), {
      caller: "replica-a_call",
      callee: "replica-host_b",
    });
    for (const name of ["a_deleg", "a_obj", "a_call"] as const) {
      const lines = switches(procs[name]!);
      assert.equal(lines.length, 1, `${name}: ${JSON.stringify(lines)}`);
      assert.deepEqual([lines[0]!.from, lines[0]!.to], [api.api1, api.api2], name);
    }

    // Now many of each, through api2 and straight to each A replica: none lost.
    const failures: string[] = [];
    let answered = 0;
    const expect = async (what: string, call: () => Promise<unknown>, want: unknown) => {
      try {
        assert.deepEqual(await call(), want);
        answered++;
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message}`);
      }
    };
    const rounds = [];
    for (let i = 0; i < 5; i++) {
      for (const name of A_REPLICAS) {
        const direct = at(name);
        rounds.push(
          expect(`${name} ctx.call`, () => direct.infer({ type: "call_other", host: "a" }, {}), {
            caller: `replica-${name}`,
            callee: "replica-host_b",
          }),
          expect(`${name} delegation`, () => direct.infer({ type: "where", host: "b" }, {}), "replica-host_b"),
          expect(`${name} object read`, () => direct.infer({ type: "obj_get", host: "a" }, { ref }), "owned by b"),
        );
      }
      rounds.push(
        expect(
          "api2 ctx.call",
          async () => ((await viaApi2.infer({ type: "call_other", host: "a" }, {})) as { callee: string }).callee,
          "replica-host_b",
        ),
        expect("api2 object read", () => viaApi2.infer({ type: "obj_get", host: "a" }, { ref }), "owned by b"),
      );
    }
    await Promise.all(rounds);
    assert.deepEqual(failures, [], "no request lost");
    assert.equal(answered, rounds.length);
    // One switch per replica, however many requests met the dead API server.
    for (const name of A_REPLICAS) assert.equal(switches(procs[name]!).length, 1, name);
  });
});
