// Seed capability behaviours ("Capability").
import assert from "node:assert/strict";
import { test } from "node:test";
import { Capability, capabilityFromHeaders, matches, modelTypeFallback, normalizeCapability } from "../src/protocol/capability.js";

test("construction and get with defaults", () => {
  const c = new Capability({ type: "chat", gpus: 2 });
  assert.equal(c.get("type"), "chat");
  assert.equal(c.get("gpus"), "2");
  assert.equal(c.get("missing"), undefined);
  assert.equal(c.get("missing", "x"), "x");
});

test("exact, subset, wrong value, missing key, empty query", () => {
  const c = new Capability({ type: "chat", model: "llama-70b" });
  assert.equal(c.matches({ type: "chat", model: "llama-70b" }), true);
  assert.equal(c.matches({ type: "chat" }), true);
  assert.equal(c.matches({ type: "embed" }), false);
  assert.equal(c.matches({ type: "chat", gpus: "1" }), false);
  assert.equal(c.matches({}), true);
  assert.equal(matches({ gpus: "2" }, normalizeCapability({ gpus: 2 })), true);
});

test("toDict keeps values and returns a copy; readable string form", () => {
  const c = new Capability({ type: "chat", model: "x" });
  const d = c.toDict();
  d.type = "changed";
  assert.equal(c.get("type"), "chat");
  assert.equal(String(c), "{type=chat, model=x}");
});

test("bad capabilities are refused with the path", () => {
  assert.throws(() => normalizeCapability({ "": "x" }), { code: "INVALID_CAPABILITY" });
  assert.throws(() => normalizeCapability({ a: { b: 1 } }, "capabilities[0]"), /capabilities\[0\]\.a: expected a string/);
  assert.throws(() => normalizeCapability({ a: "x".repeat(2000) }), { code: "INVALID_CAPABILITY" });
  assert.throws(() => normalizeCapability(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, "v"]))), /at most 64 keys/);
});

test("X-Capability-* headers: key lowercased, '-' → '_'", () => {
  assert.deepEqual(capabilityFromHeaders({ "x-capability-type": "chat", "x-capability-model-version": "2", host: "x" }), {
    type: "chat",
    model_version: "2",
  });
  assert.deepEqual(capabilityFromHeaders({ host: "x" }), {});
  // Past the bound of remembered header names, keys are still derived the same way.
  for (let i = 0; i < 5000; i++) {
    assert.deepEqual(capabilityFromHeaders({ [`x-capability-k-${i}-x`]: "v", "x-capability-type": "chat" }), {
      [`k_${i}_x`]: "v",
      type: "chat",
    });
  }
});

test("model routes fall back to type: model=m → type=m, other keys kept; none when a type is set or no model", () => {
  assert.deepEqual(modelTypeFallback({ model: "summarize" }), { type: "summarize" });
  assert.deepEqual(modelTypeFallback({ model: "m", version: "2" }), { version: "2", type: "m" });
  assert.equal(modelTypeFallback({ model: "llama", type: "chat" }), undefined);
  assert.equal(modelTypeFallback({ type: "chat" }), undefined);
});
