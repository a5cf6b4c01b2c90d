/** Replica C of the demo: type=heavy, a slow handler that honours its abort signal. */
import { setTimeout as sleep } from "node:timers/promises";
import { AnyServe } from "anyserve";

export const app = new AnyServe();

app.capability({ type: "heavy" }, async (req, ctx) => {
  const ms = Number(req.has("ms") ? req.value("ms") : 500);
  await sleep(ms, undefined, { signal: ctx.signal });
  return { done: `worked ${ms} ms`, replica: ctx.replicaId };
});
