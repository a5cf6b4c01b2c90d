// Issue 25 item 13: a SIGSTOPped replica. Its requests stop completing while it still "heartbeats"
// from the registry's point of view and its next probe is up to 10 s away: the gateway must stop
// sending it new requests once its in-flight ones have made no progress for the stall time, and its
// probes, which time out, must count. Round robin, so that nothing but the stall check keeps new
// requests away from it (power of two choices avoids it on its own, by its growing in-flight count).
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { runLoad } from "../helpers/load.js";
import { FIXTURES, registryIds, startApiServerProc, startReplicaProc, waitFor } from "../helpers/processes.js";

const ROUTING_APP = path.join(FIXTURES, "routing_app.ts:app");
const STALL_S = 1.5;
const NAP_BODY = JSON.stringify({ inputs: [{ name: "ms", datatype: "INT32", shape: [1], data: [50] }] });

interface ReplicaRow {
  replica_id: string;
  stalled: boolean;
  health: string;
  in_flight: number;
}

test("a stopped replica gets no new requests once its in-flight ones stall", async (t) => {
  const api = await startApiServerProc(t, ["--load-balancing", "round_robin", "--stall-timeout", String(STALL_S)]);
  const url = api.ready.url!;
  const [, stopped] = await Promise.all(
    ["s-a", "s-b"].map((id) => startReplicaProc(t, url, ROUTING_APP, ["--replica-id", id, "--health-check-interval", "10"])),
  );
  await waitFor("2 replicas", async () => (await registryIds(url)).length === 2);
  const replicas = async (): Promise<ReplicaRow[]> =>
    ((await (await fetch(`${url}/api/replicas`)).json()) as { replicas: ReplicaRow[] }).replicas;

  // Both of the gateway's frame sockets to each replica open (a burst does it): a call needing a new
  // connection to the stopped one would fail fast (no connection within 2 s, 502) and get it
  // ejected; here its calls just never finish, as on a real wedged replica.
  const warm = await runLoad({ url, headers: { "x-capability-type": "nap" }, body: NAP_BODY, rps: 200, durationMs: 200 });
  assert.ok(
    warm.every((a) => a.status === 200),
    JSON.stringify(warm.slice(0, 3)),
  );
  const pid = stopped!.child.pid!;
  process.kill(pid, "SIGSTOP");
  // A stopped process ignores SIGTERM until it continues: continue it before the cleanup stops it.
  const resume = (): void => {
    if (stopped!.child.exitCode === null && stopped!.child.signalCode === null) process.kill(pid, "SIGCONT");
  };
  const stoppedAt = Date.now();
  try {
    let sawStalled = false;
    const answers = await runLoad({
      url,
      headers: { "x-capability-type": "who" },
      rps: 40,
      durationMs: 6_000,
      timeoutMs: 30_000,
      onTick: (elapsed) => {
        // Let the stopped replica's requests complete once the load has been sent: the answers still
        // say who took each one.
        if (elapsed >= 6_000) resume();
        if (elapsed > 3_000 && !sawStalled && elapsed % 500 < 10) {
          void replicas().then((rows) => {
            if (rows.find((r) => r.replica_id === "s-b")?.stalled) sawStalled = true;
          });
        }
      },
    });
    const late = answers.filter((a) => a.at > (STALL_S + 1) * 1000);
    assert.ok(late.length > 100, `${late.length} requests sent after the stall time`);
    const tookBy = (list: typeof answers) =>
      list.reduce<Record<string, number>>((acc, a) => {
        const k = a.status === 200 ? String(a.value) : `status ${a.status}`;
        acc[k] = (acc[k] ?? 0) + 1;
        return acc;
      }, {});
    assert.deepEqual(tookBy(late), { "s-a": late.length }, "after the stall time every new request goes to the running replica");
    const early = answers.filter((a) => a.at < 500);
    assert.ok((tookBy(early)["s-b"] ?? 0) > 0, "before that, round robin did send it some (which waited)");
    assert.ok(sawStalled, "/api/replicas showed it stalled");
    assert.ok(Date.now() - stoppedAt < 60_000);
  } finally {
    resume();
  }
});

test("probes that time out count, and come quickly after a failure: a stopped replica is unhealthy ~8 s after its next probe, not 30", async (t) => {
  // Probed every 10 s, the default; it heartbeats every 20 s, so it stays registered meanwhile.
  const api = await startApiServerProc(t, ["--health-check-interval", "10"]);
  const url = api.ready.url!;
  const replica = await startReplicaProc(t, url, ROUTING_APP, ["--replica-id", "p-1", "--health-check-interval", "20"]);
  await waitFor("registered", async () => (await registryIds(url)).length === 1);
  const pid = replica.child.pid!;
  process.kill(pid, "SIGSTOP");
  const stoppedAt = Date.now();
  try {
    const registry = async () =>
      ((await (await fetch(`${url}/registry`)).json()) as { replicas: { health: string; health_error?: string }[] }).replicas[0];
    const row = await waitFor("unhealthy", async () => ((await registry())?.health === "unhealthy" ? registry() : undefined), 30_000, 100);
    const tookMs = Date.now() - stoppedAt;
    // Its next probe within 10 s, timing out after 2 s; two more 1 s after each failure: <= 18 s.
    // Before: each probe waited the whole 10 s interval, three of them: ~40 s.
    assert.ok(tookMs < 22_000, `unhealthy after ${tookMs} ms`);
    // The first probe waits on the open connection ("no answer"); once it is dropped, a new one
    // gets no upgrade answer from the stopped process ("no connection").
    assert.match(row?.health_error ?? "", /no answer|no connection/i);
  } finally {
    process.kill(pid, "SIGCONT");
  }
});
