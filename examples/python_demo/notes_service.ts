/**
 * A TypeScript service between the Python ones: `add(text)` stores the text as an object, has the
 * Python `embed` capability read it by its ref, keeps the ref in the Python `kv` service, and
 * returns the ref (which the Python chat reads back): objects and calls across languages.
 */
import { Service } from "anyserve";

export class NotesService extends Service {
  async add(text: string) {
    const ctx = this.ctx.request!;
    const ref = await ctx.objects.create({ text, from: ctx.replicaId });
    const embedded = (await ctx.call({ type: "embed" }, { data: ref })) as { embedding: Float32Array };
    const id = `note-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    await this.ctx.callService("kv").set!(id, String(ref));
    return { id, ref: String(ref), dims: embedded.embedding.length };
  }
}
