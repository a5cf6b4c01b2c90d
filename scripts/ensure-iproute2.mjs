#!/usr/bin/env node
// Makes sure `ip` (iproute2) is installed for the multi-host test (test/multihost/), which makes
// network namespaces and veth pairs with it. On Debian/Ubuntu, as root, the distribution's package
// is installed with apt-get (`apt-get update` only when the install fails without it). Runs before
// `npm test` (the "pretest" script). Never fails the run: without `ip` (or without root) the test
// skips and prints why.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const say = (msg) => console.log(`ensure-iproute2: ${msg}`);
const onPath = (cmd) => (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").some((dir) => dir && existsSync(`${dir}/${cmd}`));
const run = (cmd, args) => {
  say(`running: ${cmd} ${args.join(" ")}`);
  return spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } }).status === 0;
};

if (process.platform !== "linux" || onPath("ip") || existsSync("/usr/sbin/ip") || existsSync("/sbin/ip")) process.exit(0);
if (typeof process.getuid !== "function" || process.getuid() !== 0 || !onPath("apt-get")) {
  say("`ip` is missing and cannot be installed here (needs root and apt-get): the multi-host test will skip");
  process.exit(0);
}
const install = ["install", "-y", "--no-install-recommends", "iproute2"];
if (!run("apt-get", install) && !(run("apt-get", ["update"]) && run("apt-get", install))) {
  say("installing iproute2 failed: the multi-host test will skip");
}
