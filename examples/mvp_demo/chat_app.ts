/** Replica A of the demo: type=chat, models `demo` and `llama-70b` (seed scenario 1). */
import { AnyServe } from "anyserve";

export const app = new AnyServe();

app.capability({ type: "chat", model: "demo" }, (req, ctx) => ({
  text: `[demo] you said: ${String(req.value("text"))}`,
  replica: ctx.replicaId,
}));

app.capability({ type: "chat", model: "llama-70b" }, (req, ctx) => ({
  text: `[llama-70b] a very large answer to: ${String(req.value("text"))}`,
  replica: ctx.replicaId,
}));
