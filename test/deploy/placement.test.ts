// Placement on this node: resources checked with the numbers, GPU ids distinct per replica,
// target_nodes / node_selector that this node cannot satisfy → unschedulable with the reason.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDeployment } from "../../src/deploy/load.js";
import { place, PlacementError, type NodeCapacity } from "../../src/deploy/placement.js";

const node: NodeCapacity = { name: "gpu-01", labels: { zone: "a", gpu: "a100" }, cpuCores: 16, memoryMb: 32_768, gpuIds: [0, 1, 2, 3] };

test("GPU ids are handed out distinct per replica", () => {
  const p = place(
    parseDeployment({ services: { llm: { app: "x", deployment: { replicas: 2 }, resources: { gpu_count: 2 } }, cpu_only: { app: "y" } } }),
    node,
  );
  assert.throws(
    () =>
      place(
        parseDeployment({
          services: {
            llm: { app: "x", deployment: { replicas: 2 }, resources: { gpu_count: 2 } },
            tts: { app: "y", resources: { gpu_count: 1 } },
          },
        }),
        node,
      ),
    /tts: replica 0 needs 1 GPU/,
  );
  // llm takes 2 GPUs per replica; tts asks for 1 but all 4 are taken → refused.
  assert.deepEqual(
    p.flatMap((s) => s.replicas.map((r) => [r.replicaId, r.gpuIds])),
    [
      ["llm-0", [0, 1]],
      ["llm-1", [2, 3]],
      ["cpu_only-0", []],
    ],
  );
});

test("a deployment that does not fit is refused with the numbers", () => {
  const doc = parseDeployment({
    services: { big: { app: "x", deployment: { replicas: 3 }, resources: { cpu_cores: 8, memory_mb: 20_000, gpu_count: 2 } } },
  });
  assert.throws(
    () => place(doc, node),
    (err: unknown) => {
      assert.ok(err instanceof PlacementError);
      assert.match(err.message, /cpu_cores: the services need 24 in all .* has 16/);
      assert.match(err.message, /memory_mb: the services need 60000 MB .* 32768 MB/);
      assert.match(err.message, /replica 2 needs 2 GPU\(s\); node 'gpu-01' has 4 in all and none left/);
      return true;
    },
  );
});

test("target_nodes and node_selector this node cannot satisfy → unschedulable with the reason", () => {
  const p = place(
    parseDeployment({
      services: {
        here: { app: "x", deployment: { target: "remote_specific", target_nodes: ["gpu-01"] } },
        elsewhere: { app: "x", deployment: { target: "remote_specific", target_nodes: ["node-storage-01"] } },
        zoned: { app: "x", deployment: { target: "cluster_group", node_selector: { zone: "b" } } },
        matching: { app: "x", deployment: { target: "cluster_group", node_selector: { gpu: "a100" } } },
      },
    }),
    node,
  );
  const by = Object.fromEntries(p.map((s) => [s.service, s]));
  assert.equal(by.here!.status, "scheduled");
  assert.equal(by.matching!.status, "scheduled");
  assert.equal(by.elsewhere!.status, "unschedulable");
  assert.match((by.elsewhere as { reason: string }).reason, /target_nodes \[node-storage-01\] does not include this node 'gpu-01'/);
  assert.match((by.zoned as { reason: string }).reason, /node_selector zone=b does not match node 'gpu-01' \(zone=a\)/);
});
