// Replicas that survive (issue 6): balancing strategies, health checks, failover, draining,
// outlier ejection and the retry budget — real `anyserve up` deployments under load.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { burst as burstLoad, countBy, runLoad, type Answer } from "../helpers/load.js";
import { FIXTURES, startCli, waitFor } from "../helpers/processes.js";

const WHO = { "x-capability-type": "who" };

interface Replica {
  replicaId: string;
  state: string;
  pid: number | null;
  http: string | null;
}
interface RegistryEntry {
  replica_id: string;
  http_endpoint: string;
  registered_at: string;
  health: string;
  outlier: { ejected_until: number | null; times_ejected: number };
  circuits: { capability: string; state: string }[];
}

interface Deployed {
  url: string;
  dir: string;
  replicas(): Promise<Replica[]>;
  registry(): Promise<RegistryEntry[]>;
}

/** `anyserve up` with one service `svc` of resilience_app (JSON is YAML). */
async function deploy(t: test.TestContext, svc: Record<string, unknown>, apiServer: Record<string, unknown> = {}): Promise<Deployed> {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-res-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "anyserve.yaml");
  const replicas = (svc.deployment as { replicas?: number } | undefined)?.replicas ?? 1;
  writeFileSync(
    file,
    JSON.stringify({
      api_server: { port: 0, grpc_port: null, ...apiServer },
      services: { svc: { app: path.join(FIXTURES, "resilience_app.ts:app"), ...svc } },
    }),
  );
  const up = await startCli(t, ["up", file], { RESILIENCE_DIR: dir }, 120_000);
  const url = up.ready.url!;
  const d: Deployed = {
    url,
    dir,
    async replicas() {
      const body = (await (await fetch(`${url}/api/deployment`)).json()) as { services: { svc: { replicas: Replica[] } } };
      return body.services.svc.replicas;
    },
    async registry() {
      return ((await (await fetch(`${url}/registry`)).json()) as { replicas: RegistryEntry[] }).replicas;
    },
  };
  await waitFor(`${replicas} replicas registered`, async () => (await d.registry()).length === replicas, 60_000);
  return d;
}

function deployment(extra: Record<string, unknown>): Record<string, unknown> {
  return { deployment: { replicas: 3, threading_strategy: "async", thread_count: 64, ...extra } };
}

/** `n` requests for `who`, `concurrency` at a time, with extra headers. */
function burst(url: string, n: number, concurrency: number, headers: Record<string, string> = {}): Promise<Answer[]> {
  return burstLoad(url, n, concurrency, { ...WHO, ...headers });
}

const failures = (answers: Answer[]): Answer[] => answers.filter((a) => a.status !== 200);

test("round_robin spreads 300 requests within ±5 % over 3 replicas", async (t) => {
  const d = await deploy(t, deployment({ load_balancing: "round_robin" }));
  const answers = await burst(d.url, 300, 4);
  assert.deepEqual(failures(answers), []);
  const counts = countBy(answers, (a) => String(a.value));
  assert.deepEqual(Object.keys(counts).sort(), ["svc-0", "svc-1", "svc-2"]);
  for (const [id, n] of Object.entries(counts)) assert.ok(n >= 95 && n <= 105, `${id} got ${n} of 300`);
});

for (const strategy of ["least_requests", "power_of_two"]) {
  test(`${strategy} sends less to a replica whose handler is 10× slower`, async (t) => {
    const d = await deploy(t, deployment({ load_balancing: strategy }));
    writeFileSync(path.join(d.dir, "svc-0.delay"), "100");
    writeFileSync(path.join(d.dir, "svc-1.delay"), "10");
    writeFileSync(path.join(d.dir, "svc-2.delay"), "10");
    const answers = await burst(d.url, 300, 9);
    assert.deepEqual(failures(answers), []);
    const c = countBy(answers, (a) => String(a.value));
    const slow = c["svc-0"] ?? 0;
    const fast = Math.min(c["svc-1"] ?? 0, c["svc-2"] ?? 0);
    assert.ok(slow * 2 < fast, `slow replica got ${slow}, the fast ones ${c["svc-1"]} and ${c["svc-2"]}`);
  });
}

test("consistent_hash keeps a key on one replica and moves only the leaving replica's keys", async (t) => {
  const d = await deploy(t, deployment({ load_balancing: "consistent_hash" }));
  const keys = Array.from({ length: 120 }, (_, i) => `user-${i}`);
  const placeAll = async (): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    for (const key of keys) {
      const [a, b] = [await burst(d.url, 1, 1, { "x-anyserve-affinity": key }), await burst(d.url, 1, 1, { "x-anyserve-affinity": key })];
      assert.equal(a[0]!.value, b[0]!.value, `key ${key} stays on one replica`);
      out.set(key, String(a[0]!.value));
    }
    return out;
  };
  const before = await placeAll();
  const spread = countBy([...before.values()], (v) => v);
  assert.equal(Object.keys(spread).length, 3, `keys spread over all replicas: ${JSON.stringify(spread)}`);
  // Scale to 2: svc-2 drains and leaves.
  const res = await fetch(`${d.url}/api/scale`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ service: "svc", replicas: 2 }),
  });
  assert.equal(res.status, 200, await res.text());
  await waitFor("svc-2 gone", async () => (await d.registry()).length === 2, 30_000);
  const after = await placeAll();
  let moved = 0;
  for (const key of keys) {
    if (before.get(key) === "svc-2") assert.notEqual(after.get(key), "svc-2");
    else assert.equal(after.get(key), before.get(key), `key ${key} was on ${before.get(key)}, a replica that stayed`);
    if (before.get(key) !== after.get(key)) moved++;
  }
  assert.equal(moved, spread["svc-2"], "exactly the keys of the replica that left moved");
  assert.ok(moved > keys.length / 6 && moved < keys.length / 2, `about 1/3 moved: ${moved} of ${keys.length}`);
});

/**
 * 200 req/s of `who` for `durationMs`, sending `signal` to replica `id` at `atMs`; with `until`,
 * the load goes on past `durationMs` until it holds for the answers so far (60 s at most).
 */
async function loadWithFault(
  d: Deployed,
  id: string,
  signal: NodeJS.Signals,
  durationMs: number,
  atMs: number,
  until?: (answered: readonly Answer[], faultAt: number) => boolean,
) {
  const victim = (await d.replicas()).find((r) => r.replicaId === id)!;
  let faultAt = -1;
  const startedAt = Date.now();
  const answers = await runLoad({
    url: d.url,
    headers: WHO,
    rps: 200,
    durationMs,
    onTick: (elapsed) => {
      if (faultAt < 0 && elapsed >= atMs) {
        faultAt = elapsed;
        process.kill(victim.pid!, signal);
      }
    },
    ...(until ? { until: (answered: readonly Answer[]) => faultAt >= 0 && until(answered, faultAt), maxDurationMs: 60_000 } : {}),
  });
  if (until) assert.ok(answers.length >= (durationMs / 1000) * 200);
  else assert.equal(answers.length, (durationMs / 1000) * 200);
  return { answers, faultAt, startedAt, victim };
}

test("SIGKILL of 1 of 3 replicas under 200 req/s: with failover no request fails, it restarts and takes traffic again", async (t) => {
  const interval = 0.5;
  const d = await deploy(t, {
    ...deployment({ load_balancing: "round_robin", failover_enabled: true }),
    monitoring: { health_check_interval: interval },
  });
  // The load runs until the restarted svc-1 has answered (restart back-off + boot take longer on
  // a loaded machine), 60 s at most.
  const cameBack = (answered: readonly Answer[], faultAt: number) => answered.some((a) => a.value === "svc-1" && a.at > faultAt);
  const { answers, faultAt, startedAt, victim } = await loadWithFault(d, "svc-1", "SIGKILL", 6_000, 2_000, cameBack);
  assert.deepEqual(failures(answers).slice(0, 5), [], `${failures(answers).length} requests failed`);
  // The replacement registered, is healthy, and answered requests again.
  const restarted = (await d.replicas()).find((r) => r.replicaId === "svc-1")!;
  assert.notEqual(restarted.pid, victim.pid);
  const entry = (await d.registry()).find((e) => e.replica_id === "svc-1")!;
  assert.equal(entry.health, "healthy");
  const back = answers.filter((a) => a.value === "svc-1" && a.at > faultAt);
  assert.ok(back.length > 0, "the restarted svc-1 took traffic again within the run");
  const firstBack = Math.min(...back.map((a) => a.at));
  const registeredAt = Date.parse(entry.registered_at) - startedAt;
  // Back in rotation within a few health checks of registering — not after an outlier ejection
  // (30 s by default) or a circuit's reset; the margin is for a loaded machine.
  assert.ok(firstBack - registeredAt <= 6 * interval * 1000, `first answer ${firstBack - registeredAt} ms after it registered again`);
  t.diagnostic(
    `answers by replica: ${JSON.stringify(countBy(answers, (a) => String(a.value)))}; svc-1 registered again ${registeredAt - faultAt} ms after the kill (restart back-off + boot), answered ${firstBack - registeredAt} ms after that`,
  );
});

test("SIGKILL without failover: the failures are counted, nothing hangs, every request is answered", async (t) => {
  const d = await deploy(t, deployment({ load_balancing: "round_robin", failover_enabled: false, threading_strategy: "async" }));
  writeFileSync(path.join(d.dir, "svc-1.delay"), "200"); // requests are in flight on svc-1 when it dies
  const { answers } = await loadWithFault(d, "svc-1", "SIGKILL", 4_000, 1_500);
  assert.ok(
    answers.every((a) => a.status !== 0 && a.status !== -1),
    "every request got an answer",
  );
  const failed = failures(answers);
  assert.ok(failed.length > 0, "the requests in flight on the killed replica failed");
  assert.ok(
    failed.every((a) => a.status === 502 && a.code === "REPLICA_UNREACHABLE"),
    JSON.stringify(countBy(failed, (a) => `${a.status} ${a.code}`)),
  );
  t.diagnostic(`failed without failover: ${failed.length} of ${answers.length}`);
});

test("SIGTERM to a replica under load: it drains, zero requests fail", async (t) => {
  const d = await deploy(t, deployment({ load_balancing: "round_robin", failover_enabled: false }));
  for (const r of ["svc-0", "svc-1", "svc-2"]) writeFileSync(path.join(d.dir, `${r}.delay`), "50");
  const { answers, faultAt } = await loadWithFault(d, "svc-2", "SIGTERM", 4_000, 1_500);
  assert.deepEqual(failures(answers), []);
  assert.ok(
    answers.some((a) => a.value === "svc-2" && a.at >= faultAt - 50),
    "svc-2 finished what it had",
  );
});

test("a replica answering 503 is ejected, traffic goes elsewhere, and it is re-admitted after it recovers", async (t) => {
  const d = await deploy(t, deployment({ load_balancing: "round_robin" }), {
    outlier_detection: { consecutive_failures: 5, base_ejection_time: 1.5, max_ejection_percent: 34 },
  });
  const flag = path.join(d.dir, "svc-0.fail");
  writeFileSync(flag, "");
  const during = await burst(d.url, 60, 1);
  const refused = failures(during);
  assert.equal(refused.length, 5, "svc-0 failed 5 in a row, then was ejected");
  assert.ok(refused.every((a) => a.status === 503 && a.code === "QUEUE_FULL"));
  const entry = (await d.registry()).find((e) => e.replica_id === "svc-0")!;
  assert.ok(entry.outlier.ejected_until !== null && entry.outlier.times_ejected === 1, JSON.stringify(entry.outlier));
  const ejected = await burst(d.url, 30, 1);
  assert.deepEqual(failures(ejected), []);
  assert.ok(ejected.every((a) => a.value !== "svc-0"));
  rmSync(flag);
  // After the ejection time it takes traffic again.
  await waitFor("svc-0 back in rotation", async () => (await burst(d.url, 6, 1)).some((a) => a.value === "svc-0"), 15_000);
  const healed = await burst(d.url, 30, 1);
  assert.deepEqual(failures(healed), []);
  assert.equal(countBy(healed, (a) => String(a.value))["svc-0"], 10);
});

test("with failover, a replica answering 503 costs no request; retries stay inside the budget in a total outage", async (t) => {
  const d = await deploy(t, deployment({ load_balancing: "round_robin", failover_enabled: true }), {
    // Round robin hands the failing replica more than a third of first attempts (retries advance
    // its counter too), so the floor leaves room for the ~25 retries of the first phase.
    failover: { max_retries: 2, retry_budget_ratio: 0.2, min_retries_per_second: 3 },
    outlier_detection: { consecutive_failures: 1000 },
  });
  writeFileSync(path.join(d.dir, "svc-0.fail"), "");
  const partial = await burst(d.url, 60, 2);
  assert.deepEqual(
    failures(partial),
    [],
    `QUEUE_FULL from svc-0 was retried on another replica: ${await (await fetch(`${d.url}/registry`)).text()}`,
  );
  assert.ok(partial.every((a) => a.value !== "svc-0"));

  // Total outage: every replica refuses. Count what reached the handlers.
  for (const r of ["svc-1", "svc-2"]) writeFileSync(path.join(d.dir, `${r}.fail`), "");
  const attemptsBefore = await totalAttempts(d);
  const n = 300;
  const outage = await burst(d.url, n, 4);
  // Load shedding never opens a circuit, so every request was tried and refused by a replica.
  assert.ok(
    outage.every((a) => a.status === 503 && a.code === "QUEUE_FULL"),
    JSON.stringify(countBy(outage, (a) => `${a.status} ${a.code}`)),
  );
  const upstream = (await totalAttempts(d)) - attemptsBefore;
  // Budget: 0.2 × requests in the 10 s window + 3/s × 10 s (the window also holds the 60 above).
  const bound = n + Math.ceil(0.2 * (n + 60)) + 30;
  assert.ok(
    upstream >= n && upstream <= bound,
    `${upstream} upstream attempts for ${n} requests (bound ${bound}; without a budget it would be ${3 * n})`,
  );
  const body = (await (await fetch(`${d.url}/registry`)).json()) as { failover: { retries_denied: number } };
  assert.ok(body.failover.retries_denied > 0, "the budget denied retries");
});

test("a replica whose handler keeps failing one capability: its circuit opens for that capability only, then a trial closes it", async (t) => {
  const d = await deploy(t, deployment({ load_balancing: "round_robin" }), {
    circuit_breaker: { min_requests: 5, failure_ratio: 0.5, half_open_time: 1 },
  });
  const broken = path.join(d.dir, "svc-0.error");
  writeFileSync(broken, "");
  const first = await burst(d.url, 30, 1);
  const errors = failures(first);
  assert.equal(errors.length, 5, "5 failures on svc-0 open its circuit");
  assert.ok(errors.every((a) => a.status === 500 && a.code === "WORKER_ERROR"));
  const circuit = async () => (await d.registry()).find((e) => e.replica_id === "svc-0")!.circuits.find((c) => c.capability === "type=who");
  assert.equal((await circuit())!.state, "open");
  assert.deepEqual(failures(await burst(d.url, 15, 1)), [], "no request for `who` goes to svc-0");
  // Other capabilities of svc-0 still get traffic.
  const attempts = await burst(d.url, 6, 1, { "x-capability-type": "attempts" });
  assert.equal(attempts.filter((a) => a.status === 200).length, 6);
  rmSync(broken);
  await waitFor(
    "the half-open trial closes the circuit",
    async () => {
      await burst(d.url, 3, 1);
      return (await circuit())!.state === "closed";
    },
    15_000,
  );
  const healed = await burst(d.url, 30, 1);
  assert.deepEqual(failures(healed), []);
  assert.ok(healed.some((a) => a.value === "svc-0"));
});

/** Requests the handlers of all replicas saw, asked of each replica directly. */
async function totalAttempts(d: Deployed): Promise<number> {
  let sum = 0;
  for (const e of await d.registry()) {
    const res = await fetch(`${e.http_endpoint}/infer`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-capability-type": "attempts" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "BYTES", shape: [1], data: ["x"] }] }),
    });
    const json = (await res.json()) as { outputs: { data: number[] }[] };
    sum += Number(json.outputs[0]!.data[0]);
  }
  return sum;
}

test("health checks: a replica that stops answering probes is taken out (503 NO_READY_REPLICA) and back in when it answers", async (t) => {
  const api = await startCli(t, ["api-server", "--port", "0", "--health-check-interval", "0.2"]);
  const url = api.ready.url!;
  // Heartbeats every 30 s: only the probes can notice it.
  const replica = await startCli(t, [
    "start",
    "--app",
    path.join(FIXTURES, "resilience_app.ts:app"),
    "--port",
    "0",
    "--api-server",
    url,
    "--health-check-interval",
    "30",
    "--replica-id",
    "r-health",
  ]);
  const health = async (): Promise<string | undefined> =>
    ((await (await fetch(`${url}/registry`)).json()) as { replicas: RegistryEntry[] }).replicas[0]?.health;
  await waitFor("registered", async () => (await health()) === "healthy", 30_000);
  assert.equal((await burst(url, 1, 1))[0]!.status, 200);

  replica.child.kill("SIGSTOP");
  t.after(() => replica.child.kill("SIGCONT"));
  await waitFor("marked unhealthy after 3 failed probes", async () => (await health()) === "unhealthy", 30_000);
  const res = await fetch(`${url}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", ...WHO },
    body: JSON.stringify({ inputs: [{ name: "t", datatype: "BYTES", shape: [1], data: ["x"] }] }),
  });
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("retry-after"), "1");
  const err = (await res.json()) as { code: string; error: string };
  assert.equal(err.code, "NO_READY_REPLICA");
  assert.match(err.error, /r-health unhealthy \(\d+ failed health checks/);

  replica.child.kill("SIGCONT");
  await waitFor("healthy again after one passing probe", async () => (await health()) === "healthy", 30_000);
  assert.equal((await burst(url, 1, 1))[0]!.status, 200);
});

/**
 * Two async replicas (health checks every 0.3 s), then svc-1 stopped with SIGSTOP (SIGCONT at the
 * test's end if it is still there); resolves once it is out of rotation, with the process stopped
 * and svc-1's registry entry as it is when asked.
 */
async function stopSvc1(
  t: test.TestContext,
  unhealthyRestartAfter: number | null,
): Promise<{ d: Deployed; victim: Replica; entry: () => Promise<RegistryEntry | undefined> }> {
  const d = await deploy(t, {
    deployment: { replicas: 2, threading_strategy: "async", thread_count: 8 },
    monitoring: { health_check_interval: 0.3, unhealthy_restart_after: unhealthyRestartAfter },
  });
  const victim = (await d.replicas()).find((r) => r.replicaId === "svc-1")!;
  process.kill(victim.pid!, "SIGSTOP");
  t.after(() => {
    try {
      process.kill(victim.pid!, "SIGCONT");
    } catch {
      /* already gone: replaced */
    }
  });
  const entry = async (): Promise<RegistryEntry | undefined> => (await d.registry()).find((e) => e.replica_id === "svc-1");
  // Stopped, it fails its probes and stops heartbeating (0.3 s interval: dropped after 0.9 s); either way it is not serving.
  await waitFor("svc-1 out of rotation", async () => (await entry())?.health !== "healthy", 30_000);
  return { d, victim, entry };
}

test("a replica that is alive but not serving (SIGSTOP) is killed after unhealthy_restart_after and restarted; its replacement is healthy and serves", async (t) => {
  const { d, victim, entry } = await stopSvc1(t, 1);
  await waitFor(
    "svc-1 running again as a new process",
    async () => {
      const r = (await d.replicas()).find((x) => x.replicaId === "svc-1");
      return r !== undefined && r.state === "running" && r.pid !== null && r.pid !== victim.pid;
    },
    30_000,
  );
  const replaced = (await d.replicas()).find((x) => x.replicaId === "svc-1") as Replica & { lastExit?: string | null };
  assert.match(String(replaced.lastExit), /^replaced, not serving for 1 s \(.+\) \(SIGKILL\)$/);
  assert.throws(() => process.kill(victim.pid!, 0), { code: "ESRCH" }, "the stopped process is gone");
  await waitFor("the replacement is healthy", async () => (await entry())?.health === "healthy", 30_000);
  const whoAnswered = new Set((await burst(d.url, 40, 4)).map((a) => String(a.value)));
  assert.ok(whoAnswered.has("svc-1"), `svc-1 serves again: ${[...whoAnswered].join(", ")}`);
});

test("with unhealthy_restart_after: null a replica that is not serving only leaves rotation: it is never killed, and comes back when it resumes", async (t) => {
  const { d, victim, entry } = await stopSvc1(t, null);
  // The condition under test is time itself: 3 s out of rotation — three of the replacer's sweeps,
  // three times the 1 s after which the test above is replaced — and still the same, stopped process.
  const outSince = Date.now();
  while (Date.now() - outSince < 3_000) {
    const r = (await d.replicas()).find((x) => x.replicaId === "svc-1")!;
    assert.equal(r.pid, victim.pid, "not restarted");
    assert.equal(r.state, "running");
    process.kill(victim.pid!, 0); // still alive (throws ESRCH if it was killed)
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  process.kill(victim.pid!, "SIGCONT");
  await waitFor("svc-1 healthy again, same process", async () => (await entry())?.health === "healthy", 30_000);
  assert.equal((await d.replicas()).find((x) => x.replicaId === "svc-1")!.pid, victim.pid);
  await waitFor("svc-1 serves again", async () => new Set((await burst(d.url, 20, 4)).map((a) => String(a.value))).has("svc-1"), 30_000);
});
