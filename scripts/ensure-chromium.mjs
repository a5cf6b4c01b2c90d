#!/usr/bin/env node
// Makes sure a Chromium the browser tests can drive (test/dashboard/) is installed at
// /usr/bin/chromium. Nothing is downloaded from the internet by playwright: on Debian/Ubuntu, as
// root, the distribution's package is installed with apt-get (`apt-get update` only when the
// install fails without it). Runs before `npm test` (the "pretest" script).
//
// Exit 0 when /usr/bin/chromium is there afterwards; otherwise non-zero with what to do.
// ANYSERVE_CHROMIUM=/path/to/chromium: use that binary instead, check only that it exists.
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";

const wanted = process.env.ANYSERVE_CHROMIUM || "/usr/bin/chromium";
const say = (msg) => console.log(`ensure-chromium: ${msg}`);

function present() {
  try {
    accessSync(wanted, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function fail(msg) {
  console.error(`ensure-chromium: ${msg}`);
  console.error(
    `ensure-chromium: the browser tests (test/dashboard/) need Chromium at ${wanted}. ` +
      "Install it yourself (Debian/Ubuntu: `sudo apt-get install chromium`), " +
      "or point ANYSERVE_CHROMIUM at a Chromium/Chrome binary.",
  );
  process.exit(1);
}

function run(cmd, args) {
  say(`running: ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (r.error) say(`${cmd} could not start: ${r.error.message}`);
  return r.status === 0;
}

function onPath(cmd) {
  return (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").some((dir) => dir && existsSync(`${dir}/${cmd}`));
}

if (present()) {
  say(`${wanted} is present, nothing to do`);
  process.exit(0);
}
if (process.env.ANYSERVE_CHROMIUM) fail(`ANYSERVE_CHROMIUM=${wanted} is not an executable file`);
if (process.platform !== "linux") fail(`${wanted} is missing and automatic installation only works on Linux with apt-get`);
if (typeof process.getuid !== "function" || process.getuid() !== 0)
  fail(`${wanted} is missing and this is not root, so it cannot be installed with apt-get here`);
if (!onPath("apt-get")) fail(`${wanted} is missing and apt-get is not available to install it`);

say(`${wanted} is missing: installing the distribution's chromium package with apt-get`);
const install = ["install", "-y", "--no-install-recommends", "chromium"];
let ok = run("apt-get", install);
if (!ok) {
  say("the install failed: refreshing the package lists (apt-get update) and trying again");
  if (!run("apt-get", ["update"])) say("apt-get update failed");
  ok = run("apt-get", install);
}
if (!ok) fail("apt-get install chromium failed (see its output above)");
if (!present()) fail(`apt-get installed chromium but ${wanted} is still missing`);
say(`installed chromium: ${wanted}`);
process.exit(0);
