// A fresh `npm install` is clean on the Node the README names: no installed package requires
// another Node (npm's EBADENGINE warning), and the README, package.json's engines and the
// Node running the suite agree.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import semver from "semver";

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), "utf8");
const pkg = JSON.parse(read("package.json")) as { engines: { node: string } };
const lock = JSON.parse(read("package-lock.json")) as {
  packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean }>;
};

test("every package in the lock file runs on the Node version anyserve requires, and on this one", () => {
  const least = semver.minVersion(pkg.engines.node)!.version;
  const refusing: string[] = [];
  for (const [where, entry] of Object.entries(lock.packages)) {
    const range = entry.engines && !Array.isArray(entry.engines) ? entry.engines.node : undefined;
    if (!where || range === undefined) continue;
    for (const version of [least, process.version]) {
      if (!semver.satisfies(version, range)) refusing.push(`${where.replace(/^node_modules\//, "")} needs node ${range}, not ${version}`);
    }
  }
  assert.deepEqual(refusing, [], "npm install would warn EBADENGINE");
});

test("the README names the Node version package.json requires", () => {
  const least = semver.minVersion(pkg.engines.node)!;
  assert.match(read("README.md"), new RegExp(`Requires Node\\.js ≥ ${least.major}\\.${least.minor}\\b`));
  assert.ok(semver.satisfies(process.version, pkg.engines.node), `this Node (${process.version}) is older than ${pkg.engines.node}`);
});
