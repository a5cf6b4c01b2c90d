/**
 * Load from wrk (when bench/lib/tools.ts finds it): the load generator the project's reference
 * gateway measurements were taken with. Being C, it takes a fraction of the CPU autocannon takes per request (measured
 * here: ~10 µs against ~30), and that CPU comes out of the same 2 cores the servers run on — so
 * with autocannon every ratio above 1 is squeezed towards the generator's own limit.
 *
 * One wrk thread, `connections` keep-alive connections; the request (method, headers, body) is set
 * once in a Lua script, so wrk sends the same bytes every time without running Lua per request.
 * wrk takes whole seconds only: durations are rounded, at least 1 s.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { LoadResult, Target } from "./load.js";
import { findTool, type Tool } from "./tools.js";

let found: Tool | null | undefined;

/** wrk, if there is one (looked up once). */
export function wrkTool(): Tool | undefined {
  if (found === undefined) found = findTool("wrk", "ANYSERVE_BENCH_WRK", "usr/bin/wrk") ?? null;
  return found ?? undefined;
}

/** A Lua long string that cannot be closed by the text it holds (as a table key it needs spaces: `t[ [[k]] ]`, since `t[[[k]]]` is a call). */
function luaString(text: string): string {
  let eq = "";
  while (text.includes(`]${eq}]`)) eq += "=";
  return `[${eq}[${text}]${eq}]`;
}

/** The script: the fixed request, and a summary line of JSON when wrk is done. */
function script(target: Target): string {
  const headers = Object.entries(target.headers)
    .map(([k, v]) => `wrk.headers[ ${luaString(k)} ] = ${luaString(v)}`)
    .join("\n");
  return `wrk.method = "POST"
wrk.body = ${luaString(target.body.toString())}
${headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nWRK_RESULT {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"socketErrors":%d,"statusErrors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
`;
}

interface WrkSummary {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  socketErrors: number;
  statusErrors: number;
}

/** Runs wrk against `target` for `seconds` (rounded to whole seconds). */
export async function runWrk(target: Target, connections: number, seconds: number): Promise<LoadResult> {
  const tool = wrkTool();
  if (!tool) throw new Error("wrk is not available");
  const dir = mkdtempSync(path.join(os.tmpdir(), "anyserve-bench-wrk-"));
  const file = path.join(dir, "request.lua");
  writeFileSync(file, script(target));
  const args = [
    "-t",
    "1",
    "-c",
    String(connections),
    "-d",
    `${Math.max(1, Math.round(seconds))}s`,
    "--timeout",
    "10s",
    "-s",
    file,
    target.url,
  ];
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(tool.bin, args, { env: tool.env, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    const line = out.split("\n").find((l) => l.startsWith("WRK_RESULT "));
    if (!line) throw new Error(`wrk printed no result:\n${out.slice(0, 500)}`);
    const r = JSON.parse(line.slice("WRK_RESULT ".length)) as WrkSummary;
    const ok = r.requests - r.statusErrors;
    const elapsed = r.durationUs / 1e6;
    return { rps: ok / elapsed, p50Us: r.p50Us, p99Us: r.p99Us, requests: ok, errors: r.socketErrors + r.statusErrors, seconds: elapsed };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
