// Resources as declared: memory_mb limits a single/async replica's own heap; a replica without
// gpu_count sees no GPU; the node's GPUs are found with nvidia-smi (a stand-in script here: this
// machine has no GPU, and the script prints what nvidia-smi -L prints); cpu_cores caps a replica's
// CPU through cgroups where the machine allows it, and up says when it cannot.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { cpuCapper } from "../../src/deploy/cpu-cap.js";
import { FIXTURES, startCli, waitFor } from "../helpers/processes.js";

const APP = path.join(FIXTURES, "resources_app.ts:app");

interface Replica {
  replicaId: string;
  state: string;
  pid: number | null;
  http: string | null;
  restarts: number;
  lastExit: string | null;
}

function deploymentDir(t: { after(fn: () => void): void }, services: string, extra = ""): string {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-res-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, "anyserve.yaml"), `api_server: { port: 0, grpc_port: null }\n${extra}services:\n${services}`);
  return dir;
}

async function replicas(url: string, service: string): Promise<Replica[]> {
  const body = (await (await fetch(`${url}/api/deployment`)).json()) as { services: Record<string, { replicas: Replica[] }> };
  return body.services[service]!.replicas;
}

async function call(http: string, type: string, inputs: Record<string, number>): Promise<Response> {
  return fetch(`${http}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-capability-type": type },
    body: JSON.stringify({ inputs: Object.entries(inputs).map(([name, v]) => ({ name, datatype: "FP64", shape: [1], data: [v] })) }),
  });
}

const environOf = (pid: number) =>
  Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, "utf8")
      .split("\0")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );

test("memory_mb is a single/async replica's own heap limit: past it the replica dies and is restarted, without it the same load is served", async (t) => {
  const dir = deploymentDir(
    t,
    `  small: { app: ${APP}, resources: { memory_mb: 64 }, monitoring: { health_check_interval: 1 } }\n  roomy: { app: ${APP} }\n`,
  );
  const up = await startCli(t, ["up", path.join(dir, "anyserve.yaml")], {}, 90_000);
  const url = up.ready.url!;
  const [small] = await replicas(url, "small");
  const cmdline = readFileSync(`/proc/${small!.pid}/cmdline`, "utf8").split("\0");
  assert.ok(cmdline.includes("--max-old-space-size=64"), cmdline.join(" "));
  // 150 MB of live arrays: over 64 MB of heap the process cannot go on.
  const res = await call(small!.http!, "hog", { mb: 150 }).catch((err: Error) => err);
  assert.ok(res instanceof Error || res.status >= 500, "the request over the limit fails");
  const after = await waitFor(
    "small restarted",
    async () => (await replicas(url, "small")).find((r) => r.restarts === 1 && r.state === "running"),
    60_000,
  );
  assert.match(after!.lastExit ?? "", /SIGABRT|SIGTRAP|code|signal/i);
  const [roomy] = await replicas(url, "roomy");
  assert.equal((await call(roomy!.http!, "hog", { mb: 150 })).status, 200);
});

test("a replica without gpu_count sees no GPU; the node's GPUs come from nvidia-smi when the file gives none", async (t) => {
  const bin = mkdtempSync(path.join(tmpdir(), "anyserve-fake-smi-"));
  t.after(() => rmSync(bin, { recursive: true, force: true }));
  const smi = path.join(bin, "nvidia-smi");
  writeFileSync(smi, "#!/bin/sh\necho 'GPU 0: Stand-in GPU (UUID: GPU-0000)'\necho 'GPU 1: Stand-in GPU (UUID: GPU-0001)'\n");
  chmodSync(smi, 0o755);
  const dir = deploymentDir(t, `  none: { app: ${APP} }\n  two: { app: ${APP}, resources: { gpu_count: 2 } }\n`);
  const up = await startCli(t, ["up", path.join(dir, "anyserve.yaml")], { PATH: `${bin}:${process.env.PATH}` }, 90_000);
  const [none] = await replicas(up.ready.url!, "none");
  const [two] = await replicas(up.ready.url!, "two");
  assert.equal(environOf(none!.pid!).CUDA_VISIBLE_DEVICES, "", "hidden: an empty CUDA_VISIBLE_DEVICES");
  assert.equal(environOf(two!.pid!).CUDA_VISIBLE_DEVICES, "0,1");
  const body = (await (await call(none!.http!, "gpus", { x: 1 })).json()) as { outputs: { name: string; data: unknown[] }[] };
  assert.deepEqual(body.outputs.find((o) => o.name === "visible")?.data, [""]);
});

test("without nvidia-smi the node has no GPU to give: a service asking for one is refused before anything starts", async (t) => {
  const dir = deploymentDir(t, `  two: { app: ${APP}, resources: { gpu_count: 1 } }\n`);
  const empty = mkdtempSync(path.join(tmpdir(), "anyserve-nopath-"));
  mkdirSync(path.join(empty, "bin"));
  t.after(() => rmSync(empty, { recursive: true, force: true }));
  const up = startCli(t, ["up", path.join(dir, "anyserve.yaml")], { PATH: `${path.join(empty, "bin")}:/usr/bin:/bin` }, 60_000);
  await assert.rejects(up, /needs 1 GPU\(s\); node 'local' has 0 in all/);
});

test("cpu_cores caps a replica's CPU with a cgroup quota where the machine allows it, and up says which", async (t) => {
  const capper = cpuCapper();
  const dir = deploymentDir(t, `  capped: { app: ${APP}, resources: { cpu_cores: 0.25 } }\n`);
  const up = await startCli(t, ["up", path.join(dir, "anyserve.yaml")], { ANYSERVE_LOG_LEVEL: "info" }, 90_000);
  if (!capper.available) {
    t.diagnostic(`no cgroup CPU controller here (${capper.reason}): checking that up says so`);
    assert.ok(up.output.some((l) => l.includes("placement figure only")));
    return;
  }
  assert.ok(up.output.some((l) => l.includes("caps each replica's CPU")));
  const [capped] = await replicas(up.ready.url!, "capped");
  const line = readFileSync(`/proc/${capped!.pid}/cgroup`, "utf8")
    .split("\n")
    .find((l) => /(^0::|[:,]cpu[,:])/.test(l) && l.includes("/anyserve/"));
  assert.ok(line, "the replica is in an anyserve cgroup");
  const group = line.slice(line.lastIndexOf(":") + 1);
  const v2 = capper.how.includes("v2");
  const base = v2 ? "/sys/fs/cgroup" : ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"].find((m) => existsSync(path.join(m, group)))!;
  const quota = v2
    ? readFileSync(path.join(base, group, "cpu.max"), "utf8").split(" ")[0]
    : readFileSync(path.join(base, group, "cpu.cfs_quota_us"), "utf8").trim();
  assert.equal(quota, "25000", "a quarter of each 100 ms period");
  // Busy for 600 ms of wall time at a quarter of a core: the kernel throttles it.
  assert.equal((await call(capped!.http!, "spin", { ms: 600 })).status, 200);
  const stat = readFileSync(path.join(base, group, "cpu.stat"), "utf8");
  const throttled = Number(/nr_throttled (\d+)/.exec(stat)?.[1]);
  assert.ok(throttled > 0, `throttled ${throttled} times:\n${stat}`);
});
