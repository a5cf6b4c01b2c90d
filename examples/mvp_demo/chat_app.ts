/** Replica A of the demo: type=chat, models `demo` and `llama-70b` (seed scenario 1), and `assistant` for OpenAI's clients. */
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

interface Message {
  role: string;
  content: string;
}

const words = (text: string) => text.split(/\s+/).filter((w) => w !== "").length;

/**
 * A chat model for OpenAI's clients (`/v1/chat/completions` maps onto `{type: chat, model}` with
 * the messages as JSON in input `messages`; docs/models.md): the answer's text and token counts.
 */
app.capability({ type: "chat", model: "assistant" }, (req) => {
  const messages = JSON.parse(String(req.value("messages"))) as Message[];
  const text = `you said: ${messages.at(-1)?.content ?? ""}`;
  return { text, prompt_tokens: messages.reduce((n, m) => n + words(m.content), 0), completion_tokens: words(text) };
});

/** The same, streamed word by word (`stream: true`). */
app.capability({ type: "chat", model: "assistant" }, async function* (req) {
  const messages = JSON.parse(String(req.value("messages"))) as Message[];
  const parts = `you said: ${messages.at(-1)?.content ?? ""}`.split(" ");
  for (const [i, w] of parts.entries()) yield { text: i === 0 ? w : ` ${w}` };
});
