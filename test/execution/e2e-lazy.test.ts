// Seed scenario 4 with real processes: a lazy capability starts cold, its first request starts
// the workers and succeeds, the registry shows it warm, and after idle_timeout it is cold again
// with onStop run. The router prefers warm replicas; start failures end in `failed`. The worker
// routes need the control-plane token.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Cleanups, FIXTURES, registryIds, startApiServerProc, startCli, waitFor, type Proc } from "../helpers/processes.js";
import { freshReplicaId, infer, marks, registryState, workersRoute } from "./helpers.js";

const APP = `${FIXTURES}/exec_e2e_app.ts:app`;
const TOKEN = "s3cret-exec";
const LAZY = { type: "lazy", at: "lazy" };
const hooks = new Cleanups();
let api: string;
const reps: Proc[] = [];
const ids: string[] = [];

describe("lazy capabilities (seed scenario 4)", () => {
  before(async () => {
    api = (await startApiServerProc(hooks, ["--token", TOKEN])).ready.url!;
    await Promise.all(
      [0, 1].map(async (i) => {
        ids[i] = freshReplicaId(`e2e-lazy${i}`);
        reps[i] = await startCli(
          hooks,
          [
            "start",
            "--app",
            APP,
            "--port",
            "0",
            "--api-server",
            api,
            "--health-check-interval",
            "0.5",
            "--token",
            TOKEN,
            "--replica-id",
            ids[i]!,
            "--threading-strategy",
            "multi",
            "--thread-count",
            "1",
            "--idle-timeout",
            "1.5",
          ],
          { EXEC_AT: "lazy" },
        );
      }),
    );
    await waitFor("2 replicas registered", async () => (await registryIds(api, TOKEN)).length === 2);
  });
  after(() => hooks.run());

  test("cold → first request starts the workers and succeeds → warm → idle_timeout → cold, onStop ran", async () => {
    assert.deepEqual(await Promise.all(ids.map((id) => registryState(api, id, LAZY, TOKEN))), ["cold", "cold"]);
    const first = await infer(api, LAZY, { x: 1 });
    assert.equal(first.status, 200, first.error);
    const pid = String(first.value).split("/")[0];
    const i = reps.findIndex((r) => String(r.child.pid) === pid);
    assert.ok(i >= 0, `answered by pid ${pid}`);
    assert.deepEqual(
      marks(ids[i]!, "lazy.log").map((l) => l.split(" ").slice(0, 2).join(" ")),
      ["start thread-1"],
    );
    await waitFor("the registry to show it warm", async () => (await registryState(api, ids[i]!, LAZY, TOKEN)) === "warm");
    await waitFor(
      "the registry to show it cold after idle_timeout",
      async () => (await registryState(api, ids[i]!, LAZY, TOKEN)) === "cold",
      15_000,
    );
    // The registration turns cold as the lane starts stopping (so routers stop preferring it);
    // onStop runs in the worker just after, so wait for its mark rather than race it.
    const hookMarks = (): string[] => marks(ids[i]!, "lazy.log").map((l) => l.split(" ").slice(0, 2).join(" "));
    await waitFor("onStop to run in the worker", async () => hookMarks().length >= 2);
    assert.deepEqual(hookMarks(), ["start thread-1", "stop thread-1"]);
  });

  test("the router prefers the replica whose capability is warm; POST /workers/start warms it", async () => {
    const warmOne = reps[1]!;
    const started = await workersRoute(warmOne.ready.http!, "POST", "/workers/start", { capability: LAZY }, TOKEN);
    assert.equal(started.status, 200);
    await waitFor("registry: warm on one replica", async () => (await registryState(api, ids[1]!, LAZY, TOKEN)) === "warm");
    const who = await Promise.all(Array.from({ length: 10 }, () => infer(api, LAZY, { x: 1 })));
    assert.deepEqual(new Set(who.map((w) => String(w.value).split("/")[0])), new Set([String(warmOne.child.pid)]));
    const stopped = await workersRoute(warmOne.ready.http!, "POST", "/workers/stop", { capability: LAZY }, TOKEN);
    assert.equal(stopped.status, 200);
    assert.equal((stopped.body.capabilities as { state: string }[])[0]!.state, "cold");
  });

  test("GET /workers lists each capability's state, workers, queue; without the token → 401", async () => {
    const http = reps[0]!.ready.http!;
    assert.equal((await workersRoute(http, "GET", "/workers")).status, 401);
    assert.equal((await workersRoute(http, "POST", "/workers/start", { capability: LAZY }, "wrong")).status, 401);
    const w = await workersRoute(http, "GET", "/workers", undefined, TOKEN);
    assert.equal(w.status, 200);
    const caps = w.body.capabilities as {
      capability: Record<string, string>;
      state: string;
      strategy: string;
      lazy: boolean;
      queued: number;
      in_flight: number;
      workers: Record<string, number>;
    }[];
    assert.deepEqual(
      caps.map((c) => c.capability.type),
      ["do", "open", "batch", "lazy", "badstart"],
    );
    assert.ok(caps.every((c) => c.strategy === "multi" && c.lazy && c.queued === 0 && typeof c.workers.warm === "number"));
    assert.equal((await workersRoute(http, "POST", "/workers/start", { capability: { type: "nope" } }, TOKEN)).status, 404);
  });

  test("a capability whose onStart always throws: capped retries, 503 CAPABILITY_FAILED with the reason, registry shows failed", async () => {
    const bad = { type: "badstart", at: "lazy" };
    const r = await infer(api, bad, { x: 1 });
    assert.equal(r.status, 503);
    assert.equal(r.code, "CAPABILITY_FAILED");
    assert.match(r.error!, /model file missing/);
    await waitFor("registry: failed", async () =>
      (await Promise.all(ids.map((id) => registryState(api, id, bad, TOKEN)))).includes("failed"),
    );
  });
});
