/** Many deadlines on one timer: what fires, when, in which order, and what never does. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Deadlines, MAX_DEADLINE_MS, Timed } from "../../src/util/deadlines.js";

/** A deadline that records when it fired, and resolves `fired`. */
class Probe extends Timed {
  firedAt: number | undefined;
  readonly fired: Promise<void>;
  #done!: () => void;
  constructor(
    readonly name: string,
    private readonly log: string[] = [],
    private readonly then?: () => void,
  ) {
    super();
    this.fired = new Promise((resolve) => {
      this.#done = resolve;
    });
  }
  onTimeout(): void {
    this.firedAt = performance.now();
    this.log.push(this.name);
    this.then?.();
    this.#done();
  }
}

test("a deadline fires once, not before its time; deadlines of several durations fire in due order", async () => {
  const d = new Deadlines();
  const log: string[] = [];
  const start = performance.now();
  const late = new Probe("late", log);
  const early = new Probe("early", log);
  const middle = new Probe("middle", log);
  d.set(late, 60);
  d.set(early, 10);
  d.set(middle, 30);
  assert.equal(d.size, 3);
  await Promise.all([late.fired, early.fired, middle.fired]);
  assert.deepEqual(log, ["early", "middle", "late"]);
  assert.ok(early.firedAt! - start >= 10, `fired after ${early.firedAt! - start} ms`);
  assert.ok(late.firedAt! - start >= 60, `fired after ${late.firedAt! - start} ms`);
  assert.equal(d.size, 0);
});

test("a cleared deadline never fires, and one set again replaces the first", async () => {
  const d = new Deadlines();
  const log: string[] = [];
  const cleared = new Probe("cleared", log);
  const moved = new Probe("moved", log);
  const marker = new Probe("marker", log);
  d.set(cleared, 5);
  d.set(moved, 5);
  d.set(moved, 40); // replaces its 5 ms deadline
  d.clear(cleared);
  d.clear(cleared); // twice is harmless
  d.set(marker, 20);
  await marker.fired;
  assert.deepEqual(log, ["marker"]);
  await moved.fired;
  assert.deepEqual(log, ["marker", "moved"]);
  assert.equal(cleared.firedAt, undefined);
});

test("same-duration deadlines fire in the order they were set, and clearing from the middle keeps the rest", async () => {
  const d = new Deadlines();
  const log: string[] = [];
  const probes = Array.from({ length: 6 }, (_, i) => new Probe(`p${i}`, log));
  for (const p of probes) d.set(p, 15);
  d.clear(probes[0]!);
  d.clear(probes[3]!);
  d.clear(probes[5]!);
  assert.equal(d.size, 3);
  await Promise.all([probes[1]!.fired, probes[2]!.fired, probes[4]!.fired]);
  assert.deepEqual(log, ["p1", "p2", "p4"]);
});

test("no deadline for a delay that is not a number below the limit; zero or negative fires at once", async () => {
  const d = new Deadlines();
  for (const ms of [Number.NaN, Infinity, MAX_DEADLINE_MS]) {
    d.set(new Probe("never"), ms);
    assert.equal(d.size, 0, `delay ${ms}`);
  }
  const now = new Probe("now");
  d.set(now, -5);
  await now.fired;
  assert.equal(d.size, 0);
});

test("a callback may set a new deadline", async () => {
  const d = new Deadlines();
  const log: string[] = [];
  const again = new Probe("again", log);
  const setter = new Probe("setter", log, () => d.set(again, 5));
  d.set(setter, 5);
  await Promise.all([setter.fired, again.fired]);
  assert.deepEqual(log, ["setter", "again"]);
  assert.equal(d.size, 0);
});

/** Runs `body` in a child process with `deadlines` and `Timed` imported; its exit code and output. */
async function child(body: string): Promise<{ code: number | null; out: string; err: string }> {
  const { spawn } = await import("node:child_process");
  const script = `import { deadlines, Timed } from ${JSON.stringify(new URL("../../src/util/deadlines.ts", import.meta.url).href)};\n${body}`;
  const proc = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout.on("data", (c: Buffer) => {
    out += c.toString();
  });
  proc.stderr.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => proc.on("exit", resolve));
  return { code, out, err };
}

test("a callback that throws does not stop the others; its error is thrown as from any timer", async () => {
  const r = await child(`
    class T extends Timed { constructor(name, fn) { super(); this.name = name; this.fn = fn; } onTimeout() { console.log(this.name); this.fn?.(); } }
    deadlines.set(new T("before"), 5);
    deadlines.set(new T("thrower", () => { throw new Error("boom"); }), 5);
    deadlines.set(new T("after"), 5);`);
  assert.equal(r.out, "before\nthrower\nafter\n");
  assert.notEqual(r.code, 0);
  assert.match(r.err, /Error: boom/);
});

test("the timer does not keep an idle process alive once every deadline is cleared", async () => {
  const r = await child(`
    class T extends Timed { onTimeout() { console.log("fired"); } }
    const t = new T();
    deadlines.set(t, 60_000);
    deadlines.clear(t);
    console.log("cleared");
    // Kept alive by anything, the process would reach this (an unref'd timer keeps nothing alive).
    setTimeout(() => { console.log("still alive"); process.exit(3); }, 3000).unref();`);
  assert.equal(r.code, 0);
  assert.equal(r.out.trim(), "cleared");
});
