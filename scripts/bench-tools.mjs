#!/usr/bin/env node
// Fetches the optional load generator and peer the benchmark suite compares against — wrk (the
// load generator the reference gateway measurements were taken with: C, so it takes far less of
// the shared cores than a Node generator) and nginx — into .bench-tools/, without installing them:
// `apt-get download` of the distribution's packages, unpacked with `dpkg-deb -x`. Runs before
// `npm run bench`; best effort: when a tool cannot be fetched, the suite runs without it (wrk →
// autocannon, nginx → a "skipped" row) and says so.
//
// ANYSERVE_BENCH_FETCH=0 skips fetching. ANYSERVE_BENCH_WRK / ANYSERVE_BENCH_NGINX name binaries
// to use instead (bench/lib/tools.ts looks there first).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dest = path.join(root, ".bench-tools");
const say = (msg) => console.log(`bench-tools: ${msg}`);

/** Packages per tool (the tool's own and the libraries it needs that a base system lacks). */
const TOOLS = [
  { name: "wrk", binary: "usr/bin/wrk", env: "ANYSERVE_BENCH_WRK", packages: ["wrk", "libluajit-5.1-2"] },
  { name: "nginx", binary: "usr/sbin/nginx", env: "ANYSERVE_BENCH_NGINX", packages: ["nginx"] },
];

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  if (r.error) return `${cmd} could not start: ${r.error.message}`;
  return r.status === 0 ? null : `${cmd} ${args.join(" ")} exited with ${r.status}: ${(r.stderr || "").trim().split("\n").pop()}`;
}

if (process.env.ANYSERVE_BENCH_FETCH === "0") {
  say("ANYSERVE_BENCH_FETCH=0: not fetching anything");
  process.exit(0);
}
if (process.platform !== "linux") {
  say("not Linux: the suite uses autocannon and skips nginx");
  process.exit(0);
}
for (const tool of TOOLS) {
  if (process.env[tool.env]) {
    say(`${tool.name}: ${tool.env}=${process.env[tool.env]}`);
    continue;
  }
  if (existsSync(path.join(dest, tool.binary))) {
    say(`${tool.name}: present in .bench-tools/`);
    continue;
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), "anyserve-bench-tools-"));
  try {
    let err = run("apt-get", ["download", ...tool.packages], tmp);
    if (err) {
      say(`${tool.name}: not fetched (${err}); the suite runs without it`);
      continue;
    }
    mkdirSync(dest, { recursive: true });
    for (const deb of readdirSync(tmp).filter((f) => f.endsWith(".deb"))) {
      err = run("dpkg-deb", ["-x", path.join(tmp, deb), dest]);
      if (err) break;
    }
    say(err ? `${tool.name}: not unpacked (${err})` : `${tool.name}: unpacked into .bench-tools/ (${tool.packages.join(", ")})`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
