/** Replica B of the demo: type=embed, returns an FP32 vector (a toy character hash). */
import { AnyServe } from "anyserve";

export const app = new AnyServe();

const DIM = 8;

app.capability({ type: "embed" }, async (req, ctx) => {
  // Either the text itself, or (scenario 3) a ref to an object holding {text}.
  const text = req.has("data") ? (await ctx.objects.getJSON<{ text: string }>(String(req.value("data")))).text : String(req.value("text"));
  const vector = new Float32Array(DIM);
  for (let i = 0; i < text.length; i++) vector[i % DIM]! += text.charCodeAt(i) / 255;
  const norm = Math.hypot(...vector) || 1;
  return { embedding: vector.map((v) => v / norm), embedded_by: ctx.replicaId, chars: text.length };
});
