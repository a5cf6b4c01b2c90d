// `npm start` runs `anyserve up examples/mvp_demo/anyserve.yaml`: it serves the demo and stops
// cleanly on Ctrl-C, leaving no orphan processes.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import OpenAI from "openai";
import { Client } from "../../src/sdk/client.js";
import path from "node:path";
import { DEMO, startCli, waitFor } from "../helpers/processes.js";

function childrenOf(pid: number): number[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("the demo serves chat, embed, heavy, stream and an ONNX model, and Ctrl-C stops every process", async (t) => {
  const demo = await startCli(t, ["up", path.join(DEMO, "anyserve.yaml"), "--port", "0", "--grpc-port", "0"], {}, 90_000);
  assert.equal(demo.ready.role, "up");
  const client = new Client({ apiServer: demo.ready.url! });
  t.after(() => client.close());
  const chat = (await client.infer({ type: "chat" }, { text: "hello" })) as { text: string; replica: string };
  assert.equal(chat.replica, "chat-0");
  const embed = (await client.infer({ type: "embed" }, { text: "hello" })) as { embedding: Float32Array };
  assert.equal(embed.embedding.length, 8);
  // Scenario 3: chat stores an object and passes embed the ref; embed reads it.
  const viaObject = (await client.infer({ type: "chat", model: "objects" }, { text: "a long document" })) as {
    ref: string;
    embedded_by: string;
    chars: number;
  };
  assert.match(viaObject.ref, /^obj:/);
  assert.equal(viaObject.embedded_by, "embed-0");
  assert.equal(viaObject.chars, "a long document".length);
  const heavy = (await client.infer({ type: "heavy" }, { ms: 20 })) as { done: string };
  assert.match(heavy.done, /20 ms/);
  const tokens: unknown[] = [];
  for await (const tok of client.stream({ type: "stream" }, { text: "one two three" }, { parameters: { delay_ms: 1 } })) tokens.push(tok);
  assert.deepEqual(tokens, ["one", "two", "three"]);
  assert.ok(
    demo.output.some((l) => l.includes("curl")),
    "prints a first curl",
  );

  // The repository's ONNX model, and the chat model through OpenAI's client (docs/models.md).
  const classified = await fetch(`${demo.ready.url}/v2/models/classifier/infer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] }),
  });
  assert.equal(classified.status, 200);
  assert.deepEqual(((await classified.json()) as { outputs: { name: string; shape: number[] }[] }).outputs[0]!.shape, [1, 3]);
  const openai = new OpenAI({ baseURL: `${demo.ready.url}/v1`, apiKey: "none", maxRetries: 0 });
  const answer = await openai.chat.completions.create({ model: "assistant", messages: [{ role: "user", content: "hi there" }] });
  assert.equal(answer.choices[0]!.message.content, "you said: hi there");

  const kids = childrenOf(demo.child.pid!);
  assert.equal(kids.length, 5, "5 replicas (the API server runs in the up process)");
  demo.child.kill("SIGINT");
  const { code } = await demo.exited;
  assert.equal(code, 0);
  await waitFor("every child gone", () => kids.every((pid) => !alive(pid)), 5_000);
});
