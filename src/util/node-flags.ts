/**
 * Node flags of the serving processes (API server, replicas). V8 reads them when it creates the
 * heap, so they go on the node command line: `bin/anyserve.js`'s shebang, `npm start` (whose
 * `anyserve up` runs the API server in its own process), and every process the CLI starts
 * ({@link servingExecArgv} in `deploy/child-process.ts`).
 *
 * `--no-memory-reducer`: after a few seconds with little allocation, V8's memory reducer shrinks
 * the heap, and the next burst of requests pays for it. Measured on the 2-vCPU VM (interleaved
 * A/B, wrk at 50 connections for 3 s after 30 s idle, three rounds, twice): the API server cost
 * 41 µs of CPU per request with the reducer off against 47–55 with it on; loaded without a pause,
 * both cost the same. A bare node:http server, with a heap a fraction of the size, showed no
 * difference. A serving process idles between bursts by nature; the price is that its heap stays
 * at its working size (tens of MB) instead of shrinking while idle.
 *
 * `--initial-old-space-size=64`: in the first seconds of load after a pause, V8 promoted much of
 * the young generation and collected the old one (~20 MB live in an API server) again and again:
 * `--trace-gc-nvp` over the 3 s after 25 s idle counted 33–55 MB promoted and two mark-compacts,
 * against under 1 MB and none without the pause. Given a starting size for the old generation, V8
 * skips full collections while it holds less: after the same pause ~1 MB was promoted and there
 * was no mark-compact (why so much was promoted: the young generation had shrunk, see the next
 * flag). Interleaved A/B, wrk at 50 connections for 3 s after 25 s idle, six rounds, run twice
 * with the sides swapped: the API server cost 24–27 µs of CPU per request against 26–30 (+3–4 %
 * requests); loaded without a pause, both cost the same (24 µs). The price is up to 64 MB of old generation before V8
 * collects it (the API server's resident size after that A/B: 117 MB against 113).
 *
 * `--min-semi-space-size=8`: after a pause V8 shrinks the young generation (its semi-spaces, 16 MB
 * each under load) and under load grows it back a step at a time, so the first seconds of load
 * after a pause collect it three to five times as often: `--trace-gc` over 3 s of load after 20 s
 * idle counted 44–58 scavenges a second in the API server and 34–108 in the replica, against 6–15
 * and 16–25 before the pause; with this flag, 9–25 and 15–42. Interleaved A/B of two pairs, 3 s of
 * load after 20 s idle, six rounds: 33.9k against 32.7k req/s (medians; ahead in 4 of 6: modest,
 * docs/performance.md has the rest). The price: a semi-space that has been used stays at 8 MB or
 * more while idle (two of them, in every isolate: worker threads too), against V8's default of
 * 1 MB on the main thread.
 *
 * The flag the user gave wins: run node with `--memory-reducer`, another
 * `--initial-old-space-size` or another `--min-semi-space-size` to change any of them.
 *
 * @example
 * ```ts
 * spawn(process.execPath, [...servingExecArgv(process.execArgv), "bin/anyserve.js", "api-server"]);
 * ```
 */
export const SERVING_NODE_FLAGS: readonly string[] = ["--no-memory-reducer", "--initial-old-space-size=64", "--min-semi-space-size=8"];

/** `execArgv` with each serving flag added unless it sets that option already (either way). */
export function servingExecArgv(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(optionName));
  return [...SERVING_NODE_FLAGS.filter((f) => !given.has(optionName(f))), ...execArgv];
}

/** `--no-memory_reducer` → `memory-reducer`: the V8 option a flag sets, however it is spelled. */
function optionName(arg: string): string {
  return arg
    .replace(/^--(no-)?/, "")
    .split("=")[0]!
    .replace(/_/g, "-");
}
