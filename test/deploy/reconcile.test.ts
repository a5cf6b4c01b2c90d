// reconcile() alone: plain data in, actions out — no controller, no handles, no clock.
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveService } from "../../src/config/resolve.js";
import { configVersion } from "../../src/deploy/changes.js";
import { parseDeployment } from "../../src/deploy/load.js";
import { place, type NodeCapacity } from "../../src/deploy/placement.js";
import { backoffMs, reconcile, type DesiredState, type ObservedReplica } from "../../src/deploy/reconcile.js";

const node: NodeCapacity = { name: "local", labels: {}, cpuCores: 64, memoryMb: 65_536, gpuIds: [0, 1, 2, 3] };

function desired(services: Record<string, Record<string, unknown>>, counts: Record<string, number> = {}): DesiredState {
  const file = parseDeployment({ services: Object.fromEntries(Object.entries(services).map(([n, s]) => [n, { app: "./app.ts", ...s }])) });
  const out: DesiredState = { services: {} };
  for (const p of place(file, node, counts)) {
    const config = resolveService(file.services[p.service]!);
    out.services[p.service] = { config, version: configVersion(config), replicas: p.replicas.length, placement: p };
  }
  return out;
}

function replica(want: DesiredState, service: string, slot: number, over: Partial<ObservedReplica> = {}): ObservedReplica {
  return {
    id: `${service}-${slot}`,
    service,
    slot,
    version: want.services[service]!.version,
    phase: "running",
    crashLooping: false,
    health: "serving",
    notServingSince: null,
    crashes: [],
    ...over,
  };
}

test("empty slots get a replica each, with the GPU ids placement gave the slot", () => {
  const want = desired({ svc: { deployment: { replicas: 2 }, resources: { gpu_count: 2 } } });
  const plan = reconcile(want, { replicas: [] }, 0);
  assert.deepEqual(
    plan.actions.map((a) => (a.type === "start" ? [a.slot, a.gpuIds] : a.type)),
    [
      [0, [0, 1]],
      [1, [2, 3]],
    ],
  );
});

test("the same inputs give the same plan; only `now` moves a back-off along", () => {
  const want = desired({ svc: {} });
  const actual = { replicas: [replica(want, "svc", 0, { phase: "exited", crashes: [1_000, 5_000] })] };
  const early = reconcile(want, actual, 5_499);
  assert.deepEqual(early, reconcile(want, actual, 5_499));
  assert.deepEqual([early.actions, early.wakeAt], [[], 5_000 + backoffMs(2)]);
  assert.deepEqual(early.pending, ["svc-0 restarts in 1 ms"]);
  assert.deepEqual(
    reconcile(want, actual, 5_500).actions.map((a) => a.type),
    ["restart"],
  );
  assert.deepEqual([1, 2, 3, 4, 5, 8, 9].map(backoffMs), [250, 500, 1000, 2000, 4000, 30_000, 30_000]);
});

test("scaling down idle replicas alike stops the highest slots; a removed or unschedulable service stops all of its replicas", () => {
  const want = desired({ svc: {}, far: { deployment: { target_nodes: ["elsewhere"] } } }, { svc: 1 });
  const actual = { replicas: [2, 0, 1].map((slot) => replica(want, "svc", slot)) };
  actual.replicas.push(
    { ...replica(want, "svc", 0), id: "far-0", service: "far" },
    { ...replica(want, "svc", 0), id: "gone-0", service: "gone" },
  );
  assert.deepEqual(
    reconcile(want, actual, 0).actions.map((a) => `${a.type} ${"id" in a ? a.id : ""} ${a.reason}`),
    [
      "stop svc-2 scaled down (idle)",
      "stop svc-1 scaled down (idle)",
      "stop far-0 unschedulable here",
      "stop gone-0 its service was removed",
    ],
  );
});

test("scaling down: replicas not serving yet leave before running ones, then the idlest; new replicas take the lowest free slot", () => {
  const want = desired({ svc: {} }, { svc: 2 });
  const actual = {
    replicas: [
      replica(want, "svc", 0, { ongoing: 3 }),
      replica(want, "svc", 1, { ongoing: 0 }),
      replica(want, "svc", 2, { ongoing: 5 }),
      replica(want, "svc", 3, { phase: "starting", health: "unregistered" }),
    ],
  };
  assert.deepEqual(
    reconcile(want, actual, 0).actions.map((a) => `${a.type} ${"id" in a ? a.id : ""} ${a.reason}`),
    ["stop svc-3 scaled down (not serving: starting)", "stop svc-1 scaled down (idle)"],
    "the starting one goes (never a running one while a starting one could), then the idle one; the busy ones stay",
  );
  const one = desired({ svc: {} }, { svc: 1 });
  const busy = { replicas: [replica(one, "svc", 0, { ongoing: 4 }), replica(one, "svc", 2, { ongoing: 1 })] };
  assert.deepEqual(
    reconcile(one, busy, 0).actions.map((a) => `${a.type} ${"id" in a ? a.id : ""} ${a.reason}`),
    ["stop svc-2 scaled down (the least busy: 1 request(s) ongoing, which it finishes)"],
  );
  // The survivors keep their slots (0 and 2): growing again fills slot 1, then 3.
  const four = desired({ svc: {} }, { svc: 4 });
  const sparse = { replicas: [replica(four, "svc", 0), replica(four, "svc", 2)] };
  assert.deepEqual(
    reconcile(four, sparse, 0).actions.map((a) => (a.type === "start" ? a.slot : a.type)),
    [1, 3],
  );
});

test("a service with GPUs keeps its slots dense when it scales down: the highest leave, whatever their load", () => {
  const want = desired({ svc: { resources: { gpu_count: 1 } } }, { svc: 1 });
  const actual = { replicas: [replica(want, "svc", 0, { ongoing: 0 }), replica(want, "svc", 1, { ongoing: 9 })] };
  assert.deepEqual(
    reconcile(want, actual, 0).actions.map((a) => `${a.type} ${"id" in a ? a.id : ""} ${a.reason}`),
    ["stop svc-1 scaled down"],
  );
});

test("a settled deployment yields nothing to do and nothing pending", () => {
  const want = desired({ svc: { deployment: { replicas: 2 } } });
  const plan = reconcile(want, { replicas: [replica(want, "svc", 0), replica(want, "svc", 1)] }, 0);
  assert.deepEqual(plan, { actions: [], pending: [], wakeAt: null });
});

test("an outdated replica that is down is cleared away and its slot refilled at once, beside a slot that is rolling", () => {
  const old = desired({ svc: { deployment: { replicas: 2 } } });
  const want = desired({ svc: { deployment: { replicas: 2, thread_count: 2 } } });
  const actual = {
    replicas: [
      replica(old, "svc", 0),
      replica(want, "svc", 0, { id: "svc-0-r2", phase: "starting", health: "unregistered" }),
      replica(old, "svc", 1, { phase: "exited", crashes: [0] }),
    ],
  };
  assert.deepEqual(
    reconcile(want, actual, 10).actions.map((a) => `${a.type} ${"id" in a ? a.id : `slot ${a.slot}`}: ${a.reason}`),
    ["stop svc-1: outdated and down", "start slot 1: empty slot"],
  );
});
