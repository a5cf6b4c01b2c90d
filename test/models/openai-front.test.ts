// Issue 29.4: the official `openai` npm client against the API server's OpenAI-compatible front —
// chat (plain and streamed, with usage), completions (plain and streamed), embeddings, the model
// list, and errors in OpenAI's shape — served by TypeScript handlers and by the same handlers
// written in Python (on Python worker processes), each on a real replica.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { Cleanups, FIXTURES, registryIds, startApiServerProc, startReplicaProc, waitFor, type Proc } from "../helpers/processes.js";

for (const [language, file] of [
  ["TypeScript", "openai_app.ts"],
  ["Python", "openai_app.py"],
] as const) {
  const hooks = new Cleanups();
  let api: Proc;
  let client: OpenAI;

  describe(`OpenAI-compatible front, ${language} handlers`, () => {
    before(async () => {
      api = await startApiServerProc(hooks);
      await startReplicaProc(hooks, api.ready.url!, path.join(FIXTURES, `${file}:app`));
      await waitFor("the replica registered", async () => (await registryIds(api.ready.url!)).length === 1);
      client = new OpenAI({ baseURL: `${api.ready.url}/v1`, apiKey: "unused", maxRetries: 0 });
    });
    after(() => hooks.run());

    test("GET /v1/models lists the chat, completion and embedding models", async () => {
      const ids = [];
      for await (const m of client.models.list()) ids.push(m.id);
      assert.deepEqual(ids.sort(), ["echo-chat", "echo-chat-stream", "lengths", "upper"]);
    });

    test("chat completion: the handler's text, usage from its counts, other fields as parameters", async () => {
      const res = await client.chat.completions.create({
        model: "echo-chat",
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: "one two three" },
        ],
        max_tokens: 7,
        stop: ["\n", "END"],
      });
      assert.equal(res.object, "chat.completion");
      assert.equal(res.model, "echo-chat");
      assert.equal(res.choices[0]!.message.role, "assistant");
      // `stop`, an array, reaches the handler as its JSON text.
      assert.equal(res.choices[0]!.message.content, "three two one (max 7) (stop \n|END)");
      assert.equal(res.choices[0]!.finish_reason, "stop");
      assert.deepEqual(res.usage, { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
    });

    test("chat completion streamed: chunks in order, the last with finish_reason and usage, then [DONE]", async () => {
      const stream = await client.chat.completions.create({
        model: "echo-chat-stream",
        messages: [{ role: "user", content: "a b c d" }],
        stream: true,
      });
      const pieces: string[] = [];
      let last: OpenAI.Chat.Completions.ChatCompletionChunk | undefined;
      for await (const chunk of stream) {
        pieces.push(chunk.choices[0]?.delta.content ?? "");
        last = chunk;
      }
      assert.equal(pieces.join(""), "d c b a");
      assert.ok(pieces.length >= 4, `streamed in ${pieces.length} chunks`);
      assert.equal(last?.choices[0]?.finish_reason, "stop");
      assert.deepEqual(last?.usage, { prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
    });

    test("chat completion streamed with stream_options.include_usage: a last chunk with no choices carries usage", async () => {
      const stream = await client.chat.completions.create({
        model: "echo-chat-stream",
        messages: [{ role: "user", content: "a b" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      const [finish, usage] = chunks.slice(-2);
      assert.equal(finish?.choices[0]?.finish_reason, "stop");
      assert.equal(finish?.usage, undefined, "usage comes in its own chunk");
      assert.deepEqual(usage?.choices, []);
      assert.deepEqual(usage?.usage, { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 });
    });

    test("completions: plain and streamed", async () => {
      const res = await client.completions.create({ model: "upper", prompt: "hello" });
      assert.equal(res.choices[0]!.text, "HELLO");
      const stream = await client.completions.create({ model: "upper", prompt: "abc", stream: true });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
      assert.equal(text, "ABC");
    });

    test("embeddings: one vector per input, from the handler's [n, d] tensor", async () => {
      const res = await client.embeddings.create({ model: "lengths", input: ["banana", "sky"] });
      assert.deepEqual(
        res.data.map((d) => [d.index, d.embedding]),
        [
          [0, [6, 3]],
          [1, [3, 0]],
        ],
      );
      const one = await client.embeddings.create({ model: "lengths", input: "queue", encoding_format: "float" });
      assert.deepEqual(one.data[0]!.embedding, [5, 4]);
    });

    test("errors come in OpenAI's shape with the catalogue's status", async () => {
      await assert.rejects(
        client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }),
        (err: unknown) => {
          assert.ok(err instanceof OpenAI.APIError);
          assert.equal(err.status, 404);
          assert.equal(err.code, "NO_MATCHING_CAPABILITY");
          assert.match(err.message, /no-such-model/);
          return true;
        },
      );
      const res = await fetch(`${api.ready.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "echo-chat", messages: [] }),
      });
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), {
        error: {
          message: "'messages' must be a non-empty array of {role, content}",
          type: "invalid_request_error",
          param: "messages",
          code: "INVALID_REQUEST",
        },
      });
    });
  });
}
