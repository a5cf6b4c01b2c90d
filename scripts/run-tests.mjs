#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's test runner (TypeScript through tsx).
// Node 20's --test does not expand globs itself, so the files are listed here.
// Usage: npm test [-- <filter substring>...]
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const filters = process.argv.slice(2);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : full.endsWith(".test.ts") ? [full] : [];
  });
}

const files = walk(path.join(root, "test"))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
const args = ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=240000", ...files];
const child = spawn(process.execPath, args, {
  stdio: "inherit",
  cwd: root,
  env: { ...process.env, ANYSERVE_LOG_LEVEL: process.env.ANYSERVE_LOG_LEVEL ?? "warn" },
});
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
