/** Replica D of the demo: type=stream, streams one token per word as it "generates" them. */
import { setTimeout as sleep } from "node:timers/promises";
import { AnyServe } from "anyserve";

export const app = new AnyServe();

app.capability({ type: "stream" }, async function* (req, ctx) {
  const words = String(req.value("text")).split(/\s+/).filter(Boolean);
  const delay = Number(req.parameters.delay_ms ?? 50);
  for (const word of words) {
    await sleep(delay, undefined, { signal: ctx.signal });
    yield word;
  }
});
