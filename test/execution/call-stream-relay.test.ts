// The streaming CALL's bookkeeping, both ends in one process: the worker's ReplicaCaller and the
// replica's serveWorkerRequest, joined by a loopback in place of the Unix socket, and an upstream
// stream kept in memory in place of the replica's client — so that what each side holds (open
// streams, relays, abort listeners, the upstream iterator) can be counted after every way a stream
// ends. The real parts — replica processes, the API server, tokens, the socket — are exercised by
// test/security/call-stream.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ExecutionOptions } from "../../src/execution/base.js";
import type { WorkerHandle } from "../../src/execution/handle.js";
import { ReplicaCaller } from "../../src/execution/replica-caller.js";
import { openRelays, serveWorkerRequest } from "../../src/execution/worker-requests.js";
import { Msg, WORKER_STREAM_WINDOW_BYTES, type Meta } from "../../src/execution/worker-protocol.js";
import type { CapabilityMap } from "../../src/protocol/capability.js";
import type { InferResponse } from "../../src/protocol/types.js";
import type { CancelListener, CancelSignal } from "../../src/util/cancel.js";
import { waitFor } from "../helpers/processes.js";

const CHUNK = 16 * 1024;

/** A job's abort signal that counts its listeners. */
class JobSignal implements CancelSignal {
  aborted = false;
  reason: unknown;
  readonly listeners = new Set<CancelListener>();
  addEventListener(_t: "abort", l: CancelListener): void {
    this.listeners.add(l);
  }
  removeEventListener(_t: "abort", l: CancelListener): void {
    this.listeners.delete(l);
  }
  abort(reason: unknown): void {
    this.aborted = true;
    this.reason = reason;
    for (const l of [...this.listeners]) typeof l === "function" ? l() : l.handleEvent();
  }
}

/** An upstream stream of `n` chunks (`Infinity`: endless) of CHUNK bytes, counting what was pulled and whether it was closed. */
class Upstream {
  pulled = 0;
  closed = false;
  fail: { after: number; code: "INVALID_PARAMETER" } | undefined;
  constructor(readonly n: number) {}
  async *stream(_q: CapabilityMap, _req: unknown, o: { signal?: AbortSignal }): AsyncGenerator<InferResponse> {
    try {
      for (let i = 0; i < this.n && !o.signal?.aborted; i++) {
        if (this.fail && i === this.fail.after) {
          const { AnyServeError } = await import("../../src/errors.js");
          throw new AnyServeError(this.fail.code, "the upstream failed");
        }
        this.pulled++;
        yield {
          modelName: "up",
          outputs: [{ name: "output", datatype: "BYTES", shape: [1], data: [Buffer.from(`${i}:`.padEnd(CHUNK, "."))] }],
        };
      }
    } finally {
      this.closed = true;
    }
  }
}

/** The two ends joined: messages cross on the next turn, as over a socket. */
function pair(up: Upstream, job = new JobSignal(), tap: (type: number, id: number, meta: Meta) => boolean = () => false) {
  const ended = new AbortController();
  let caller: ReplicaCaller;
  const handle: WorkerHandle = {
    name: "loopback",
    transfersBodies: false,
    send: (type: number, id: number, meta: Meta, body?: Buffer) =>
      setImmediate(() => {
        if (tap(type, id, meta)) return;
        if (type === Msg.CALL_CHUNK || type === Msg.CALL_END) caller.streamed(type, id, meta, body ?? Buffer.alloc(0));
      }),
    terminate: () => ended.abort(),
    onMessage: () => undefined,
    onExit: () => undefined,
    ended: ended.signal,
  };
  const o = {
    env: { caller: { call: () => Promise.reject(new Error("unused")), callStreamRaw: up.stream.bind(up) } },
  } as unknown as ExecutionOptions;
  caller = new ReplicaCaller({
    send: (type, id, meta, body) => setImmediate(() => serveWorkerRequest(o, handle, type, id, meta, body, job)),
    job: () => 7,
  });
  const call = (signal?: AbortSignal) => caller.callStream({ type: "up" }, {}, { timeout: 10_000, ...(signal ? { signal } : {}) });
  /** Nothing left on either side. */
  const clean = async (): Promise<void> => {
    await waitFor("the stream to be forgotten on both sides", () => caller.openStreams === 0 && openRelays(handle) === 0);
    assert.equal(job.listeners.size, 0, "the job's abort listener was removed");
    assert.equal(up.closed, true, "the upstream iterator was closed");
  };
  return { caller, handle, job, call, clean, o };
}

const indexOf = (chunk: unknown): number =>
  Number(
    Buffer.from(chunk as Uint8Array)
      .toString()
      .split(":")[0],
  );

test("every chunk in order, then nothing held on either side", async () => {
  const up = new Upstream(100);
  const p = pair(up);
  const got: number[] = [];
  for await (const c of p.call()) got.push(indexOf(c));
  assert.deepEqual(
    got,
    Array.from({ length: 100 }, (_, i) => i),
  );
  await p.clean();
});

test("an upstream error ends the stream with its code", async () => {
  const up = new Upstream(10);
  up.fail = { after: 3, code: "INVALID_PARAMETER" };
  const p = pair(up);
  const got: number[] = [];
  await assert.rejects(
    async () => {
      for await (const c of p.call()) got.push(indexOf(c));
    },
    { code: "INVALID_PARAMETER" },
  );
  assert.deepEqual(got, [0, 1, 2]);
  await p.clean();
});

test("break cancels the upstream; a slow reader holds it back to about a window", async () => {
  const up = new Upstream(Number.POSITIVE_INFINITY);
  const p = pair(up);
  for await (const _c of p.call()) {
    // Hold the first chunk while the relay fills the window: it must stop there.
    await waitFor("the window to fill", () => openRelays(p.handle) === 1 && up.pulled > 0);
    const window = Math.ceil(WORKER_STREAM_WINDOW_BYTES / CHUNK) + 2;
    let last = -1;
    await waitFor(
      "the relay to stop pulling",
      () => {
        const same = up.pulled === last;
        last = up.pulled;
        return same;
      },
      10_000,
      50,
    );
    assert.ok(up.pulled <= window, `pulled ${up.pulled} chunks of ${CHUNK} bytes with a window of ${WORKER_STREAM_WINDOW_BYTES}`);
    break;
  }
  await p.clean();
});

test("the handler's abort, the job's abort, the job's end and the worker's end each cancel the upstream", async () => {
  const ways: [string, (p: ReturnType<typeof pair>, handler: AbortController) => void][] = [
    ["handler abort", (_p, handler) => handler.abort(new Error("handler gave up"))],
    ["job abort", (p) => p.job.abort(new Error("client went away"))],
    ["job end", (p) => p.caller.jobEnded(7)],
    ["worker end", (p) => p.handle.terminate()],
  ];
  for (const [what, end] of ways) {
    const up = new Upstream(Number.POSITIVE_INFINITY);
    const p = pair(up);
    const handler = new AbortController();
    const it = p.call(handler.signal)[Symbol.asyncIterator]();
    assert.equal(indexOf((await it.next()).value), 0, what);
    end(p, handler);
    if (what === "worker end") {
      // A dead worker reads nothing more: the replica's side stops by itself, the worker's went with it.
      await waitFor(`${what}: the relay to stop`, () => openRelays(p.handle) === 0 && up.closed);
      p.caller.jobEnded(7);
    } else {
      // Reading on ends with CANCELLED (at the latest after what had arrived before).
      await assert.rejects(
        async () => {
          while (!(await it.next()).done);
        },
        { code: "CANCELLED" },
        what,
      );
    }
    await p.clean();
  }
});

test("a CALL_STREAM whose id is still open is refused with a CALL_END naming the id; the open one goes on", async () => {
  const up = new Upstream(Number.POSITIVE_INFINITY);
  const refused: Meta[] = [];
  // The refusal carries the open stream's id: taken off the loopback here, so that what the open stream receives is its own.
  const p = pair(up, new JobSignal(), (type, _id, meta) => {
    if (type !== Msg.CALL_END || !/still open/.test(String(meta?.error))) return false;
    refused.push(meta);
    return true;
  });
  const got: number[] = [];
  for await (const c of p.call()) {
    got.push(indexOf(c));
    if (got.length === 1) {
      // The worker's first CALL_STREAM has id 1: the same id again, while it is open.
      serveWorkerRequest(p.o, p.handle, Msg.CALL_STREAM, 1, { job: 7, q: { type: "up" }, timeout: 1000 }, Buffer.from("{}"), p.job);
      await waitFor("the refusal", () => refused.length === 1);
      assert.equal(refused[0]?.code, "INTERNAL");
      assert.match(String(refused[0]?.error), /CALL_STREAM id 1 is still open on worker loopback/);
    }
    if (got.length === 50) break;
  }
  assert.deepEqual(
    got,
    Array.from({ length: 50 }, (_, i) => i),
    "the open stream went on in order",
  );
  await p.clean();
});
