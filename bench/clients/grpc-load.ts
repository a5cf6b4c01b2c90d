/**
 * The gRPC load generator (autocannon speaks only HTTP/1.1): `connections` concurrent loops of
 * unary `ModelInfer` calls, each waiting for its answer before the next, on one grpc-js channel
 * (one HTTP/2 connection, as a gRPC client normally has) per target. The request is the same
 * pre-encoded 222-byte ModelInferRequest every time (lib/oip-proto.ts); answers are not decoded.
 *
 * Forked once by the suite and driven over IPC, so it is warm (JIT, channel) from run to run:
 *   → { run: { target, connections, seconds, warmup } }
 *   ← { phase: "measure" } when the warm-up ends, then ← { result: { requests, errors, rps, p50_us, p99_us } }
 *   → { check: target }  ← { checked: <answer bytes> } or { error: message }
 * It exits when the parent disconnects.
 */
import * as grpc from "@grpc/grpc-js";
import { MODEL_INFER, grpcRequestBody } from "../lib/oip-proto.js";
import { percentile } from "../lib/stats.js";

const body = grpcRequestBody();
const identity = (b: Buffer): Buffer => b;
const channels = new Map<string, grpc.Client>();

function channel(target: string): grpc.Client {
  let c = channels.get(target);
  if (!c) {
    c = new grpc.Client(target, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    channels.set(target, c);
  }
  return c;
}

function call(c: grpc.Client): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    c.makeUnaryRequest(MODEL_INFER, identity, identity, body, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

/** Runs the loops for `seconds`; returns the sorted response times (µs) and the error count. */
async function load(
  c: grpc.Client,
  connections: number,
  seconds: number,
): Promise<{ times: Float64Array; errors: number; elapsed: number }> {
  let times = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const start = performance.now();
      try {
        await call(c);
      } catch {
        errors++;
        continue;
      }
      if (n === times.length) {
        const grown = new Float64Array(n * 2);
        grown.set(times);
        times = grown;
      }
      times[n++] = (performance.now() - start) * 1000;
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  return { times: times.subarray(0, n).sort(), errors, elapsed: (performance.now() - t0) / 1000 };
}

interface Run {
  target: string;
  connections: number;
  seconds: number;
  warmup: number;
}

async function run(r: Run): Promise<void> {
  const c = channel(r.target);
  if (r.warmup > 0) await load(c, r.connections, r.warmup);
  process.send!({ phase: "measure" });
  const { times, errors, elapsed } = await load(c, r.connections, r.seconds);
  process.send!({
    result: {
      requests: times.length,
      errors,
      rps: times.length / elapsed,
      p50_us: percentile(times, 0.5),
      p99_us: percentile(times, 0.99),
    },
  });
}

process.on("message", (m: { run?: Run; check?: string }) => {
  if (m.run) void run(m.run).catch((err: unknown) => process.send!({ error: String(err) }));
  else if (m.check)
    call(channel(m.check)).then(
      (b) => process.send!({ checked: b.length }),
      (err: unknown) => process.send!({ error: String(err) }),
    );
});
process.on("disconnect", () => process.exit(0));
process.send!({ ready: true });
