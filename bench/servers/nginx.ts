/**
 * nginx as a reverse proxy in front of the bare node:http server: the peer a user would put in
 * front of a Node service instead of a Node gateway. Used when `ANYSERVE_BENCH_NGINX` names an
 * nginx binary, when scripts/bench-tools.mjs unpacked the distribution's package into
 * `.bench-tools/`, or when `nginx` is on PATH; otherwise the suite prints a "skipped" row.
 *
 * Configuration choices, and why: one worker (the machine has 2 cores shared with the load
 * generator and the Node backend, like the single-threaded Node servers it is compared with); an
 * upstream keep-alive pool (without it nginx opens a connection per request and measures that
 * instead); no access log (the Node servers log nothing per request either).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { freePort, spawnTracked } from "../lib/procs.js";
import { findTool } from "../lib/tools.js";

/** The nginx binary to use (ANYSERVE_BENCH_NGINX, .bench-tools/, PATH), or undefined when there is none. */
export function findNginx(): string | undefined {
  return findTool("nginx", "ANYSERVE_BENCH_NGINX", "usr/sbin/nginx")?.bin;
}

function config(dir: string, port: number, upstream: URL): string {
  return `worker_processes 1;
error_log stderr warn;
pid ${dir}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backend {
    server ${upstream.host};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** Starts nginx proxying to `upstreamUrl`; resolves once it answers through to the upstream. */
export async function startNginx(bin: string, upstreamUrl: string): Promise<{ url: string; child: ChildProcess }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "anyserve-bench-nginx-"));
  mkdirSync(path.join(dir, "logs"));
  const port = await freePort();
  const conf = path.join(dir, "nginx.conf");
  writeFileSync(conf, config(dir, port, new URL(upstreamUrl)));
  const log: string[] = [];
  // -e: error log before the config is read (the default path may not be writable); -p: prefix.
  const child = spawnTracked("nginx", bin, ["-p", dir, "-e", "stderr", "-c", conf, "-g", "daemon off;"], log);
  child.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nginx exited:\n${log.join("\n")}`);
    try {
      const res = await fetch(`${url}/`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
      await res.arrayBuffer();
      if (res.status === 200) return { url, child };
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`nginx not ready in 10 s:\n${log.join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
