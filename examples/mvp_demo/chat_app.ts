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

/**
 * Scenario 3 (objects between replicas): store the conversation as an object, hand embed the
 * ref instead of the data, and return what embed made of it.
 */
app.capability({ type: "chat", model: "objects" }, async (req, ctx) => {
  const ref = await ctx.objects.create({ text: String(req.value("text")), from: ctx.replicaId });
  const embedded = (await ctx.call({ type: "embed" }, { data: ref })) as Record<string, unknown>;
  return { ref: String(ref), ...embedded };
});
