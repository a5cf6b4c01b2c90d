/**
 * A paced load generator for failover tests: sends `rps` requests per second for `durationMs`
 * over keep-alive connections and records every answer (status, error code, body), so a test
 * can count failures and see which replica answered. A request that gets no answer within
 * `timeoutMs` is recorded with status 0 — a hang.
 */
import http from "node:http";

export interface Answer {
  status: number;
  code?: string;
  /** The first output's first value (the replica id for resilience_app's `who`). */
  value?: unknown;
  /** When it was sent, ms after the load started. */
  at: number;
}

export interface LoadOptions {
  url: string;
  path?: string;
  headers: Record<string, string>;
  body?: string;
  rps: number;
  durationMs: number;
  timeoutMs?: number;
  /** Called once per pacing tick with the elapsed ms (to inject faults mid-run). */
  onTick?: (elapsedMs: number) => void;
  /**
   * Past `durationMs`, go on at the same pace until this holds for the answers received so far
   * (or `maxDurationMs` has passed) — so a test waits for an event (a restarted replica answering)
   * rather than betting that it happens within a fixed run on a loaded machine.
   */
  until?: (answered: readonly Answer[]) => boolean;
  maxDurationMs?: number;
}

const DEFAULT_BODY = JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["x"] }] });

export async function runLoad(o: LoadOptions): Promise<Answer[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(o.path ?? "/infer", o.url);
  const body = o.body ?? DEFAULT_BODY;
  const answers: Promise<Answer>[] = [];
  const answered: Answer[] = [];
  const start = Date.now();
  const maxDurationMs = o.until ? (o.maxDurationMs ?? 60_000) : o.durationMs;
  await new Promise<void>((resolve) => {
    let endMs = o.durationMs;
    const timer = setInterval(() => {
      const elapsed = Date.now() - start;
      o.onTick?.(elapsed);
      if (elapsed >= endMs && o.until && !o.until(answered)) endMs = Math.min(elapsed + 100, maxDurationMs);
      const due = Math.min(Math.floor((elapsed * o.rps) / 1000), Math.floor((endMs * o.rps) / 1000));
      while (answers.length < due) {
        const answer = send(agent, target, o.headers, body, elapsed, o.timeoutMs ?? 15_000);
        answer.then((a) => answered.push(a));
        answers.push(answer);
      }
      if (elapsed >= endMs) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  const out = await Promise.all(answers);
  agent.destroy();
  return out;
}

/** One request with the same shape of answer as {@link runLoad}'s. */
export function send(
  agent: http.Agent,
  url: URL,
  headers: Record<string, string>,
  body: string,
  at: number,
  timeoutMs: number,
): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(answerOf(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"), at)));
      res.on("error", () => resolve({ status: -1, at }));
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      resolve({ status: 0, at });
    });
    req.on("error", () => resolve({ status: -1, at }));
    req.end(body);
  });
}

function answerOf(status: number, text: string, at: number): Answer {
  try {
    const json = JSON.parse(text) as { code?: string; outputs?: { data?: unknown[] }[] };
    return { status, at, ...(json.code ? { code: json.code } : {}), ...(json.outputs ? { value: json.outputs[0]?.data?.[0] } : {}) };
  } catch {
    return { status, at };
  }
}

/** `n` requests to `/infer` with `headers`, `concurrency` at a time (closed loop, no pacing). */
export async function burst(url: string, n: number, concurrency: number, headers: Record<string, string>): Promise<Answer[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const target = new URL("/infer", url);
  const out: Answer[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        out.push(await send(agent, target, headers, DEFAULT_BODY, 0, 15_000));
      }
    }),
  );
  agent.destroy();
  return out;
}

/** Counts answers by a key. */
export function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[key(it)] = (out[key(it)] ?? 0) + 1;
  return out;
}

/**
 * A closed-loop load: `set(n)` keeps `n` clients busy, each sending its next request as soon as
 * its last one is answered (so the requests ongoing are `n`, whatever the server's speed); a
 * smaller `n` lets the extra clients finish their request and stop. `stop()` ends every client and
 * resolves with every answer, each with its latency.
 */
export class ClosedLoad {
  readonly answers: (Answer & { ms: number })[] = [];
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  readonly #target: URL;
  #clients = 0;
  readonly #running = new Map<number, Promise<void>>();
  readonly #start = Date.now();

  constructor(
    url: string,
    readonly headers: Record<string, string>,
    readonly body = DEFAULT_BODY,
  ) {
    this.#target = new URL("/infer", url);
  }

  get clients(): number {
    return this.#clients;
  }

  set(n: number): void {
    this.#clients = n;
    for (let i = 0; i < n; i++) if (!this.#running.has(i)) this.#running.set(i, this.#client(i));
  }

  async stop(): Promise<(Answer & { ms: number })[]> {
    this.#clients = 0;
    await Promise.all(this.#running.values());
    this.#agent.destroy();
    return this.answers;
  }

  async #client(i: number): Promise<void> {
    while (i < this.#clients) {
      const t = performance.now();
      const a = await send(this.#agent, this.#target, this.headers, this.body, Date.now() - this.#start, 30_000);
      this.answers.push({ ...a, ms: performance.now() - t });
    }
    this.#running.delete(i);
  }
}
