/**
 * Benchmark of the gateway → replica frame hop: `node --import tsx bench/hop.ts [seconds=5] [rounds=3]`.
 *
 * A CHILD process runs (a) a bare node:http server and (b) an http.Server with the frame server
 * attached, both doing the same work (parse a 222-byte JSON body, answer 91 bytes of JSON). The
 * parent runs a small node:http gateway that forwards bodies over FrameClient to (b). Load comes
 * from autocannon in its own process (so it does not share the gateway's event loop), 50
 * connections, interleaved rounds; only ratios within one round mean anything (noise is large).
 * Latency at concurrency 1 is measured by a sequential probe in another process (autocannon's
 * histogram has 1 ms resolution).
 */
import { fork, spawn } from "node:child_process";
import http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { FrameClient } from "../src/transport/frame-client.js";
import { attachFrameServer } from "../src/transport/frame-server.js";

const SELF = fileURLToPath(import.meta.url);

/** A 222-byte OIP-like JSON request body. */
function requestBody(): string {
  const base = {
    id: "r1",
    inputs: [{ name: "x", shape: [1, 8], datatype: "FP32", data: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] }],
    parameters: { pad: "" },
  };
  base.parameters.pad = "p".repeat(222 - JSON.stringify(base).length);
  const s = JSON.stringify(base);
  if (s.length !== 222) throw new Error(`request body is ${s.length} bytes`);
  return s;
}

/** The replica's work: parse the request, answer 91 bytes of JSON. */
function work(body: Buffer): Buffer {
  const req = JSON.parse(body.toString()) as { id: string; inputs: { data: number[] }[] };
  const sum = req.inputs[0]!.data.reduce((a, b) => a + b, 0);
  const out = { id: req.id, outputs: [{ name: "y", shape: [1], datatype: "FP32", data: [Math.round(sum * 10) / 10] }], m: "" };
  out.m = "m".repeat(Math.max(0, 91 - JSON.stringify(out).length));
  return Buffer.from(JSON.stringify(out));
}

function readBody(req: http.IncomingMessage, done: (body: Buffer) => void): void {
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  req.on("data", (c: Buffer) => {
    if (first === undefined) first = c;
    else (more ??= [first]).push(c);
  });
  req.on("end", () => done(more ? Buffer.concat(more) : (first ?? Buffer.alloc(0))));
}

function listen(server: http.Server, port = 0): Promise<number> {
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

/** Child: the bare server and the frame server. Reports their ports over IPC. */
async function child(): Promise<void> {
  const bare = http.createServer((req, res) =>
    readBody(req, (b) => {
      const out = work(b);
      res.writeHead(200, { "content-type": "application/json", "content-length": out.length });
      res.end(out);
    }),
  );
  const framed = http.createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  attachFrameServer(framed, (req, res) => res.reply({}, work(req.body)));
  const ports = { bare: await listen(bare), framed: await listen(framed) };
  process.send!(ports);
  // Answers "cpu" with this process's CPU time (µs), so the parent can attribute CPU per request.
  process.on("message", () => {
    const u = process.cpuUsage();
    process.send!({ cpu: u.user + u.system });
  });
  process.on("disconnect", () => process.exit(0));
}

/**
 * A minimal node:http gateway that forwards each body over one FrameClient. Kept separable:
 * it is the shape of the real gateway's hot path, not the real gateway.
 */
export async function startFrameGateway(
  replicaUrl: string,
  port = 0,
): Promise<{ port: number; client: FrameClient; close(): Promise<void> }> {
  const client = new FrameClient({ url: replicaUrl });
  const server = http.createServer((req, res) =>
    readBody(req, (body) => {
      client.request({ p: req.url }, body, { timeoutMs: 30_000 }).then(
        (r) => {
          res.writeHead(200, { "content-type": "application/json", "content-length": r.body.length });
          res.end(r.body);
        },
        (err: Error & { httpStatus?: number }) => {
          res.writeHead(err.httpStatus ?? 502, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: err.message }));
        },
      );
    }),
  );
  const p = await listen(server, port);
  return {
    port: p,
    client,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await client.close();
    },
  };
}

interface Load {
  rps: number;
  total: number;
  p50: number;
  p99: number;
  errors: number;
}

/** autocannon in its own process; returns req/s and latency percentiles (ms). */
function autocannon(url: string, connections: number, seconds: number, body: string): Promise<Load> {
  const bin = createRequire(import.meta.url).resolve("autocannon/autocannon.js");
  const args = [
    bin,
    "-c",
    String(connections),
    "-d",
    String(seconds),
    "-m",
    "POST",
    "-H",
    "content-type=application/json",
    "-b",
    body,
    "-j",
    "-n",
    url,
  ];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    p.on("error", reject);
    p.on("close", () => {
      try {
        const r = JSON.parse(out) as {
          requests: { average: number; total: number };
          latency: { p50: number; p99: number };
          errors: number;
          non2xx: number;
        };
        resolve({ rps: r.requests.average, total: r.requests.total, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx });
      } catch (err) {
        reject(new Error(`autocannon output unreadable: ${String(err)}: ${out.slice(0, 200)}`));
      }
    });
  });
}

/** Probe process: `n` sequential requests on one keep-alive connection; prints the p50 in µs. */
async function probe(url: string, n: number, body: string): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        url,
        { method: "POST", agent, headers: { "content-type": "application/json", "content-length": body.length } },
        (res) => {
          res.resume();
          res.on("end", resolve);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  for (let i = 0; i < 200; i++) await one(); // warm-up
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    await one();
    t.push(Number(process.hrtime.bigint() - s) / 1000);
  }
  t.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ p50: t[Math.floor(n / 2)] }));
  agent.destroy();
}

function runProbe(url: string, n: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", SELF, "--probe", url, String(n)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    p.on("close", () => {
      try {
        resolve((JSON.parse(out) as { p50: number }).p50);
      } catch {
        reject(new Error(`probe failed: ${out}`));
      }
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (x: number, d = 0): string => x.toFixed(d);

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const rounds = Number(process.argv[3] ?? 3);
  const body = requestBody();
  const replica = fork(SELF, ["--child"], { execArgv: ["--import", "tsx"] });
  const ports = await new Promise<{ bare: number; framed: number }>((r) =>
    replica.once("message", (m) => r(m as { bare: number; framed: number })),
  );
  const gw = await startFrameGateway(`http://127.0.0.1:${ports.framed}`);
  const bareUrl = `http://127.0.0.1:${ports.bare}/`;
  const gwUrl = `http://127.0.0.1:${gw.port}/v2/models/m/infer`;
  try {
    const check = await fetch(gwUrl, { method: "POST", body, headers: { "content-type": "application/json" } });
    const text = await check.text();
    if (check.status !== 200 || text.length !== 91) throw new Error(`gateway answered ${check.status} with ${text.length} bytes: ${text}`);
    await autocannon(bareUrl, 50, 1, body); // warm-up both paths
    await autocannon(gwUrl, 50, 1, body);
    const childCpu = (): Promise<number> =>
      new Promise((r) => {
        replica.once("message", (m) => r((m as { cpu: number }).cpu));
        replica.send("cpu");
      });
    console.log(`50 connections, ${seconds} s per run, latency in ms. CPU = µs per request of the serving processes`);
    console.log(`(bare: the child; frames: gateway + replica), measured outside autocannon's process.`);
    console.log("round | bare req/s  p50  p99  CPU | frames req/s  p50  p99  CPU (gw+replica) | ratio req/s  ratio CPU");
    const ratios: number[] = [],
      cpuRatios: number[] = [],
      bareR: number[] = [],
      gwR: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      let k0 = await childCpu();
      const b = await autocannon(bareUrl, 50, seconds, body);
      const bareCpu = ((await childCpu()) - k0) / b.total;
      k0 = await childCpu();
      const c0 = process.cpuUsage();
      const g = await autocannon(gwUrl, 50, seconds, body);
      const c1 = process.cpuUsage(c0);
      const gwCpu = (c1.user + c1.system) / g.total,
        repCpu = ((await childCpu()) - k0) / g.total;
      const ratio = g.rps / b.rps,
        cpuRatio = bareCpu / (gwCpu + repCpu);
      ratios.push(ratio);
      cpuRatios.push(cpuRatio);
      bareR.push(b.rps);
      gwR.push(g.rps);
      console.log(
        `${round}     | ${f(b.rps).padStart(7)}  ${f(b.p50, 1)}  ${f(b.p99)}  ${f(bareCpu)} | ${f(g.rps).padStart(7)}  ${f(g.p50, 1)}  ${f(g.p99)}  ${f(gwCpu + repCpu)} (${f(gwCpu)}+${f(repCpu)}) | ${f(ratio, 2)}  ${f(cpuRatio, 2)}${b.errors + g.errors ? `  (errors: ${b.errors}/${g.errors})` : ""}`,
      );
    }
    console.log(
      `median: bare ${f(median(bareR))} req/s, frames ${f(median(gwR))} req/s, ratio ${f(median(ratios), 2)}, CPU ratio ${f(median(cpuRatios), 2)}`,
    );
    const p1b: number[] = [],
      p1g: number[] = [];
    for (let round = 0; round < 3; round++) {
      p1b.push(await runProbe(bareUrl, 3000));
      p1g.push(await runProbe(gwUrl, 3000));
    }
    console.log(
      `concurrency 1, p50 (µs, median of 3): bare ${f(median(p1b))}, via frames gateway ${f(median(p1g))}, added ${f(median(p1g) - median(p1b))}`,
    );
  } finally {
    await gw.close();
    replica.disconnect();
  }
}

if (process.argv[2] === "--child") void child();
else if (process.argv[2] === "--probe") void probe(process.argv[3]!, Number(process.argv[4]), requestBody());
else if (process.argv[1] === SELF)
  void main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
