/**
 * The execution benchmark's app: a CPU-bound handler (`cpu`: ~2 ms of arithmetic), a no-op
 * (`noop`), and a batch handler with a fixed per-call cost (`fixed`: ~4 ms of arithmetic per call,
 * whatever the batch size — the shape of a model forward pass that batching amortises).
 */
import { AnyServe } from "anyserve";

export const app = new AnyServe();

/**
 * A fixed amount of arithmetic (~2 ms per 64 000 steps on the reference 2-core VM). Fixed work,
 * not a wall-clock spin: a spin "finishes" on time even while its thread is descheduled, which
 * would make threads look faster than the cores they share.
 */
export function work(steps: number): number {
  let x = 0;
  for (let i = 0; i < steps; i++) x += Math.sqrt(i + (x % 7));
  return x;
}

app.capability({ type: "cpu" }, () => ({ x: work(64_000) }));
app.capability({ type: "noop" }, () => ({ ok: true }));
app.capability(
  { type: "fixed" },
  (reqs) => {
    work(128_000);
    return reqs.map(() => ({ ok: true }));
  },
  { batch: true },
);
