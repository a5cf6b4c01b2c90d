// Back-pressure end to end, with real processes (issue 25 #1): a client that reads the first bytes
// of a stream of 64 KiB events and stops. Through the API server (SSE, OpenAI's streamed chat
// completion and gRPC ModelStreamInfer)
// and against a replica's own endpoints, with the handler on the event loop, in a worker thread
// and in a worker process: both processes' memory stays flat, the handler is not pulled further
// (its count of yielded events stops, bounded), and once `write_timeout` passes the stream is cut
// and the handler sees its abort. Meanwhile other requests on the same replica are not held up.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { markerDir } from "../fixtures/exec_marks.js";
import { freshReplicaId, marks } from "../execution/helpers.js";
import { Cleanups, FIXTURES, registryIds, startApiServerProc, startCli, waitFor, type Proc } from "../helpers/processes.js";
import { openAiStreamRequest, pausedGrpcStream, pausedHttpClient, rssMb, sseRequest, type PausedClient } from "../helpers/slow-clients.js";

const APP = `${FIXTURES}/flood_app.ts:app`;
/** write_timeout of every process here, seconds (half of it is the wait for a handler to be held: room for a loaded CI machine). */
const WRITE_TIMEOUT = 6;
/** Growth of a process's resident size allowed for one stalled stream (MB): without back-pressure it is hundreds. */
const RSS_GROWTH_MB = 48;
/** Events (64 KiB) the handler may yield before it is held: windows of each hop plus the kernel's socket buffers. */
const MAX_YIELDED = 400;

const hooks = new Cleanups();
let api: Proc;
const reps: Record<string, { proc: Proc; id: string }> = {};

function yielded(replicaId: string, rid: string): number {
  const p = path.join(markerDir(replicaId), `yielded-${rid}`);
  return existsSync(p) ? Number(readFileSync(p, "utf8")) : 0;
}

let seq = 0;
interface Case {
  /** Replica key in `reps`. */
  at: string;
  /** Where the client connects: the API server or the replica itself. */
  via: "api" | "replica";
  protocol: "sse" | "grpc" | "openai";
  type?: string;
}

/** Opens a stream that is not read, checks it is held and bounded, then cut; returns what was measured. */
async function stallAndCut(c: Case): Promise<{ yielded: number; growth: { api: number; replica: number } }> {
  const rep = reps[c.at]!;
  const type = c.type ?? "flood";
  const rid = `bp-${c.at}-${++seq}`;
  const apiPid = api.child.pid!;
  const repPid = rep.proc.child.pid!;
  const base = { api: rssMb(apiPid), replica: rssMb(repPid) };
  const startedBefore = new Set(marks(rep.id, "started"));
  let client: PausedClient;
  if (c.protocol === "sse" || c.protocol === "openai") {
    const url = new URL(c.via === "api" ? api.ready.url! : rep.proc.ready.http!);
    const request = c.protocol === "sse" ? sseRequest(type, rid, c.at) : openAiStreamRequest(`flood-${c.at}`, rid);
    client = await pausedHttpClient(Number(url.port), request, 200);
  } else {
    const address = c.via === "api" ? api.ready.grpc! : rep.proc.ready.grpc!;
    client = await pausedGrpcStream(address, { "x-capability-type": type, "x-capability-at": c.at }, 200);
  }
  try {
    // gRPC calls get the front end's own request id: find this call's by its start mark.
    const id = (await waitFor("the handler to start", () => marks(rep.id, "started").find((l) => !startedBefore.has(l)))) as string;
    // Held: the count stops moving while the stream is open (well before write_timeout).
    let last = -1;
    const held = await waitFor(
      "the handler to be held",
      async () => {
        const n = yielded(rep.id, id);
        const same = n > 0 && n === last;
        last = n;
        if (!same) await new Promise((r) => setTimeout(r, 300));
        return same ? n : 0;
      },
      (WRITE_TIMEOUT * 1000) / 2,
      0,
    );
    assert.ok(held <= MAX_YIELDED, `${c.at} via ${c.via} (${c.protocol}): ${held} events yielded for a client that reads none`);
    const peak = { api: 0, replica: 0 };
    // Cut after write_timeout: the handler sees its abort.
    await waitFor(
      "the handler to see its abort",
      () => {
        peak.api = Math.max(peak.api, rssMb(apiPid) - base.api);
        peak.replica = Math.max(peak.replica, rssMb(repPid) - base.replica);
        return marks(rep.id, "aborted").some((l) => l.startsWith(`${id} `) || l === id);
      },
      WRITE_TIMEOUT * 1000 + 5_000,
      50,
    );
    assert.ok(yielded(rep.id, id) <= held + 1, "nothing more was produced once held");
    for (const [proc, grew] of Object.entries(peak)) {
      assert.ok(
        grew < RSS_GROWTH_MB,
        `${c.at} via ${c.via} (${c.protocol}): the ${proc} grew by ${grew.toFixed(1)} MB for one stalled stream`,
      );
    }
    // The client, reading again, finds the stream cut (after what its kernel buffers held).
    const rest = await client.drain(5_000);
    assert.ok(rest.closed, `${c.at} via ${c.via} (${c.protocol}): the server did not close the stalled stream`);
    assert.ok(rest.bytes < (MAX_YIELDED + 10) * 65_600, `read ${rest.bytes} bytes after resuming`);
    return { yielded: held, growth: peak };
  } finally {
    client.destroy();
  }
}

describe("back-pressure: a client that stops reading a stream", () => {
  before(async () => {
    api = await startApiServerProc(hooks, ["--write-timeout", String(WRITE_TIMEOUT)]);
    const all: Record<string, string[]> = {
      single: [],
      multi: ["--threading-strategy", "multi", "--thread-count", "1"],
      process: ["--threading-strategy", "process", "--thread-count", "1"],
    };
    const only = process.env.BP_ONLY?.split(",");
    const strategies = Object.fromEntries(Object.entries(all).filter(([k]) => !only || only.includes(k)));
    await Promise.all(
      Object.entries(strategies).map(async ([at, extra]) => {
        const id = freshReplicaId(`bp-${at}`);
        const proc = await startCli(
          hooks,
          [
            "start",
            "--app",
            APP,
            "--port",
            "0",
            "--api-server",
            api.ready.url!,
            "--health-check-interval",
            "0.5",
            "--replica-id",
            id,
            "--service",
            `bp_${at}`,
            "--write-timeout",
            String(WRITE_TIMEOUT),
            "--worker-env",
            "FLOOD_AT",
            ...extra,
          ],
          { FLOOD_AT: at },
        );
        reps[at] = { proc, id };
      }),
    );
    await waitFor("the replicas registered", async () => (await registryIds(api.ready.url!)).length === Object.keys(strategies).length);
    // Warm every path once (code loaded and compiled), so memory growth is the stream's.
    for (const at of Object.keys(reps)) await warm(at);
  });
  after(() => hooks.run());

  test("SSE through the API server, handler on the event loop: held, bounded, cut after write_timeout", async (t) => {
    report(t, await stallAndCut({ at: "single", via: "api", protocol: "sse" }));
  });

  test("SSE through the API server, handler in a worker thread", async (t) => {
    report(t, await stallAndCut({ at: "multi", via: "api", protocol: "sse" }));
  });

  test("gRPC ModelStreamInfer through the API server, handler in a worker process", async (t) => {
    report(t, await stallAndCut({ at: "process", via: "api", protocol: "grpc" }));
  });

  test("OpenAI /v1/chat/completions with stream: true through the API server, handler in a worker thread", async (t) => {
    report(t, await stallAndCut({ at: "multi", via: "api", protocol: "openai" }));
  });

  test("the replica's own SSE endpoint, a push Stream whose producer awaits send()", async (t) => {
    report(t, await stallAndCut({ at: "single", via: "replica", protocol: "sse", type: "flood_push" }));
  });

  test("the replica's own gRPC endpoint, handler in a worker thread", async (t) => {
    report(t, await stallAndCut({ at: "multi", via: "replica", protocol: "grpc" }));
  });

  test("one stalled stream holds up nothing else on the same replica and frame connection", async () => {
    const rep = reps.single!;
    const url = new URL(api.ready.url!);
    const stalled = await pausedHttpClient(Number(url.port), sseRequest("flood", `bp-other-${++seq}`, "single"), 200);
    try {
      // While it is held: a unary call and a whole stream of 200 × 64 KiB go through the same gateway and replica.
      const t0 = Date.now();
      const echo = await fetch(`${api.ready.url}/infer/json`, {
        method: "POST",
        headers: { "x-capability-type": "echo", "x-capability-at": "single", "content-type": "application/json" },
        body: JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["hi"] }] }),
      });
      assert.equal(echo.status, 200);
      const ticks = await readSse(`${api.ready.url}/infer/stream`, { n: 200, size: 64 * 1024 }, "single");
      assert.equal(ticks, 200);
      assert.ok(Date.now() - t0 < WRITE_TIMEOUT * 1000, "served while the other stream was stalled");
      assert.ok(rep.proc.child.exitCode === null);
    } finally {
      stalled.destroy();
    }
  });
});

/** Puts the figures in the test's output: events yielded before the handler was held, memory growth. */
function report(t: { diagnostic(message: string): void }, r: Awaited<ReturnType<typeof stallAndCut>>): void {
  t.diagnostic(
    `held after ${r.yielded} events; growth: API server ${r.growth.api.toFixed(1)} MB, replica ${r.growth.replica.toFixed(1)} MB`,
  );
}

/** Reads a whole SSE stream of `ticks` from `url`; returns the number of events. */
async function readSse(url: string, parameters: Record<string, number>, at: string): Promise<number> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "x-capability-type": "ticks", "x-capability-at": at, "content-type": "application/json" },
    body: JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["go"] }], parameters }),
  });
  assert.equal(res.status, 200);
  const text = await res.text();
  return text.split("\n\n").filter((e) => e.startsWith("data: ") && !e.includes('"error"')).length;
}

async function warm(at: string): Promise<void> {
  const rep = reps[at]!;
  assert.equal(await readSse(`${api.ready.url}/infer/stream`, { n: 100, size: 64 * 1024 }, at), 100);
  assert.equal(await readSse(`${rep.proc.ready.http}/infer/stream`, { n: 100, size: 64 * 1024 }, at), 100);
}
