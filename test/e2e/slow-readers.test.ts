// Whole answers held for clients that never read them (issue 25 #2), with real processes run with
// the serving node flags (`--no-memory-reducer`…, as `bin/anyserve.js` and `up` run them, so an
// idle process does not collect on its own): 10 clients ask for 8 MiB answers and never read.
// The answers are held while they stall; once `write_timeout` passes every connection is closed
// by the server, and the process's memory comes back — through the API server (node:http and the
// fast ingress) and on a replica's own port. Clients that leave before the timeout free theirs too.
//
// Memory is the process's buffers outside the JS heap (`nodejs_external_memory_bytes` on its
// /metrics), where answers live: what the process holds. Freed buffers are counted out only when
// V8 collects their wrappers, and a serving process (`--no-memory-reducer`) that goes idle may not
// collect for a long time: "comes back" is read after a full collection forced through the
// inspector (test/helpers/inspect.ts) — what is still referenced, not what the collector has yet
// to reach. Resident size is printed too but not
// asserted: glibc may keep freed blocks mapped for reuse, depending on what the process allocated
// before. Every client waits for the first bytes of its answer before it stops reading, so all
// the answers exist (and are held) once they all stalled.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SERVING_NODE_FLAGS } from "../../src/util/node-flags.js";
import { INSPECT_ENV, inspect } from "../helpers/inspect.js";
import { FIXTURES, registryIds, startCli, waitFor, type Proc } from "../helpers/processes.js";
import { pausedHttpClient, rssMb, type PausedClient } from "../helpers/slow-clients.js";

/** A server's buffers outside the JS heap, MB, from its /metrics. */
async function externalMb(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^anyserve_nodejs_external_memory_bytes(?:\{[^}]*\})? (\S+)/m.exec(text);
  assert.ok(m, `${url}/metrics has no anyserve_nodejs_external_memory_bytes`);
  return Number(m[1]) / 1048576;
}

const APP = `${FIXTURES}/flood_app.ts:app`;
const WRITE_TIMEOUT = 2;
const CLIENTS = 10;
const MB = 8;
/** Buffers the process may keep above where it started once the clients are gone (MB). */
const RETURN_SLACK_MB = 40;

const body = JSON.stringify({
  inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["go"] }],
  parameters: { mb: MB, binary_data_output: true },
});
const request =
  `POST /infer HTTP/1.1\r\nHost: t\r\nX-Capability-Type: big\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** One big answer read whole (warms the path: code compiled, buffers sized). */
async function readOne(url: string): Promise<void> {
  const res = await fetch(`${url}/infer`, {
    method: "POST",
    headers: { "x-capability-type": "big", "content-type": "application/json" },
    body,
  });
  assert.equal(res.status, 200);
  assert.ok((await res.arrayBuffer()).byteLength > MB * 1024 * 1024);
}

/** `CLIENTS` clients ask `url` for a big answer each and stop reading after its first bytes. */
async function stall(url: string): Promise<PausedClient[]> {
  const port = Number(new URL(url).port);
  return Promise.all(Array.from({ length: CLIENTS }, () => pausedHttpClient(port, request, 1)));
}

/**
 * Waits for `url`'s buffers (process `proc`) to come back near `base` (MB) after a full
 * collection; returns where they ended.
 */
async function comesBack(url: string, proc: Proc, base: number, what: string): Promise<number> {
  const heap = await inspect(proc);
  try {
    let now = await externalMb(url);
    await waitFor(
      `${what}'s memory to come back near ${base.toFixed(0)} MB (now ${now.toFixed(0)} MB)`,
      async () => {
        await heap.collectGarbage();
        return (now = await externalMb(url)) <= base + RETURN_SLACK_MB;
      },
      20_000,
      250,
    );
    return now;
  } finally {
    heap.close();
  }
}

/** The answers of the stalled clients are all in the process now: at least half their size above `base`. */
async function holds(url: string, base: number, what: string): Promise<number> {
  const now = await externalMb(url);
  assert.ok(
    now >= base + (CLIENTS * MB) / 2,
    `${what} holds ${now.toFixed(0)} MB of buffers (from ${base.toFixed(0)} MB) for ${CLIENTS} stalled ${MB} MiB answers`,
  );
  return now;
}

async function heldThenCut(url: string, proc: Proc, what: string, t: { diagnostic(m: string): void }): Promise<void> {
  const pid = proc.child.pid!;
  await readOne(url);
  const base = await externalMb(url);
  const rssBase = rssMb(pid);
  const clients = await stall(url);
  try {
    // Held while they stall: the answers are in the process (else this test would prove nothing).
    const peak = await holds(url, base, what);
    const rssPeak = rssMb(pid);
    // Cut after write_timeout, with the clients still not reading: the buffers are given back...
    const end = await comesBack(url, proc, base, what);
    // ...because each connection was closed by the server: a client reading again gets what its
    // kernel held, then the end — never its whole answer.
    const rest = await Promise.all(clients.map((c) => c.drain(10_000)));
    for (const r of rest) {
      assert.ok(r.closed, `${what}: a stalled connection is still open`);
      assert.ok(r.bytes < MB * 1024 * 1024, `${what}: a stalled client got its whole answer (${r.bytes} bytes): it was not cut`);
    }
    t.diagnostic(
      `${what}: resident ${rssBase.toFixed(0)} MB → ${rssPeak.toFixed(0)} MB holding (external ${base.toFixed(0)} → ${peak.toFixed(0)} MB) → ${end.toFixed(0)} MB external after the cut (resident ${rssMb(pid).toFixed(0)} MB)`,
    );
  } finally {
    for (const c of clients) c.destroy();
  }
}

/** Fresh processes per test, so each starts from a clean count of buffers. */
async function gateway(t: Parameters<typeof startCli>[0], fastIngress: boolean): Promise<Proc> {
  const api = await startCli(
    t,
    ["api-server", "--port", "0", "--write-timeout", String(WRITE_TIMEOUT), ...(fastIngress ? ["--fast-ingress"] : [])],
    INSPECT_ENV,
    60_000,
    { nodeArgs: SERVING_NODE_FLAGS },
  );
  await replica(t, api.ready.url!);
  await waitFor("the replica registered", async () => (await registryIds(api.ready.url!)).length === 1);
  return api;
}

function replica(t: Parameters<typeof startCli>[0], apiServer?: string): Promise<Proc> {
  return startCli(
    t,
    [
      "start",
      "--app",
      APP,
      "--port",
      "0",
      "--write-timeout",
      String(WRITE_TIMEOUT),
      ...(apiServer ? ["--api-server", apiServer, "--health-check-interval", "0.5"] : []),
    ],
    apiServer ? {} : INSPECT_ENV,
    60_000,
    { nodeArgs: SERVING_NODE_FLAGS },
  );
}

describe("whole answers for clients that never read them", () => {
  test("through the API server (node:http): held, every connection cut after write_timeout, memory back", async (t) => {
    const api = await gateway(t, false);
    await heldThenCut(api.ready.url!, api, "the API server", t);
  });

  test("through the API server's fast ingress: the same", async (t) => {
    const api = await gateway(t, true);
    await heldThenCut(api.ready.url!, api, "the fast-ingress API server", t);
  });

  test("on the replica's own REST port: the same", async (t) => {
    const rep = await replica(t);
    await heldThenCut(rep.ready.http!, rep, "the replica", t);
  });

  test("clients that close before the timeout: the memory comes back too", async (t) => {
    const api = await gateway(t, false);
    const url = api.ready.url!;
    const pid = api.child.pid!;
    await readOne(url);
    const base = await externalMb(url);
    const rssBase = rssMb(pid);
    const clients = await stall(url);
    const peak = await holds(url, base, "the API server");
    const rssPeak = rssMb(pid);
    for (const c of clients) c.destroy();
    const end = await comesBack(url, api, base, "the API server");
    t.diagnostic(
      `the API server: resident ${rssBase.toFixed(0)} MB → ${rssPeak.toFixed(0)} MB holding (external ${base.toFixed(0)} → ${peak.toFixed(0)} MB) → ${end.toFixed(0)} MB external after the clients left (resident ${rssMb(pid).toFixed(0)} MB)`,
    );
  });
});
