// The object store on a directory: the seed's object-store behaviours, TTL, limits, aborted writes.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { Readable } from "node:stream";
import { describe, mock, test } from "node:test";
import { ObjRef } from "../../src/objects/ref.js";
import { ObjectStore } from "../../src/objects/store.js";
import { rejectsWith, tempDir, temps } from "./helpers.js";

describe("object store: seed behaviours", () => {
  test("bytes → binary object (size = length); JSON values → JSON objects; a custom key appears in the ref", async (t) => {
    const store = new ObjectStore({ dir: tempDir(t) });
    const bin = await store.create(Buffer.from([0, 1, 2, 255]));
    assert.equal(bin.size, 4);
    assert.equal(bin.contentType, "application/octet-stream");
    assert.deepEqual(await store.get(bin), Buffer.from([0, 1, 2, 255]));
    for (const value of [{ a: 1, b: [true, null] }, [1, "two", 3], "text", 42, 1.5, true, false, null]) {
      const ref = await store.create(value);
      assert.equal(ref.contentType, "application/json");
      assert.deepEqual(await store.getJSON(ref), value);
      assert.deepEqual(await store.getValue(ref), value);
    }
    const keyed = await store.create({ x: 1 }, { key: "my-result_1" });
    assert.equal(keyed.id, "my-result_1");
    assert.equal(keyed.key, "my-result_1");
    assert.match(keyed.toString(), /^obj:my-result_1\?/);
    const u8 = await store.create(new Uint8Array([9, 8]));
    assert.deepEqual(await store.get(u8), Buffer.from([9, 8]));
  });

  test("typed arrays keep their element type; text types stay text", async (t) => {
    const store = new ObjectStore({ dir: tempDir(t) });
    const f32 = await store.create(new Float32Array([0.5, -2, 3.25]));
    assert.equal(f32.contentType, "application/x-anyserve-array; dtype=FP32");
    assert.deepEqual(await store.getValue(f32), new Float32Array([0.5, -2, 3.25]));
    const text = await store.create("héllo", { contentType: "text/plain" });
    assert.equal((await store.get(text)).toString("utf8"), "héllo");
    assert.equal(await store.getValue(text), "héllo");
    await rejectsWith(store.create(undefined), "INVALID_PARAMETER");
    await rejectsWith(store.create(10n), "INVALID_PARAMETER");
    await rejectsWith(store.create("x", { contentType: "text/plain\r\nx-evil: 1" }), "OBJECT_REF_INVALID");
    await rejectsWith(store.getJSON(await store.create(Buffer.from("not json"))), "INVALID_JSON");
  });

  test("get by ref object, ref string, JSON form, plain object, bare id and BYTES; missing → OBJECT_NOT_FOUND", async (t) => {
    const store = new ObjectStore({ dir: tempDir(t) });
    const ref = await store.create({ hello: "world" });
    const forms = [ref, ref.toString(), JSON.stringify(ref), ref.toJSON(), ref.id, Buffer.from(ref.toString())];
    for (const form of forms) assert.deepEqual(await store.getJSON(form), { hello: "world" });
    await rejectsWith(store.get("obj-does-not-exist"), "OBJECT_NOT_FOUND");
    await rejectsWith(store.stat(new ObjRef({ id: "missing", size: 3, contentType: "application/json" })), "OBJECT_NOT_FOUND");
  });

  test("delete → true then false; exists follows", async (t) => {
    const store = new ObjectStore({ dir: tempDir(t) });
    const ref = await store.create("x");
    assert.equal(await store.exists(ref), true);
    assert.equal(await store.delete(ref), true);
    assert.equal(await store.delete(ref), false);
    assert.equal(await store.exists(ref), false);
  });

  test("list 3; cleanup(0) removes old ones; clear removes all", async (t) => {
    const store = new ObjectStore({ dir: tempDir(t) });
    const refs = await Promise.all([1, 2, 3].map((n) => store.create({ n })));
    const listed = await store.list();
    assert.equal(listed.length, 3);
    assert.deepEqual(listed.map((o) => o.id).sort(), refs.map((r) => r.id).sort());
    assert.equal(await store.cleanup(3600), 0, "nothing is an hour old");
    assert.equal(await store.cleanup(0), 3);
    assert.equal((await store.list()).length, 0);
    await Promise.all([1, 2].map((n) => store.create({ n })));
    assert.equal(await store.clear(), 2);
    assert.deepEqual(await store.list(), []);
  });

  test("a 100k-int list, unicode text, and 20 concurrent creates with unique keys", async (t) => {
    const store = new ObjectStore({ dir: tempDir(t) });
    const ints = Array.from({ length: 100_000 }, (_, i) => i * 7 - 3);
    assert.deepEqual(await store.getJSON(await store.create(ints)), ints);
    const text = "多言語 テキスト — ünïcödé 🚀";
    assert.equal(await store.getJSON(await store.create(text)), text);
    const refs = await Promise.all(Array.from({ length: 20 }, (_, i) => store.create({ i })));
    assert.equal(new Set(refs.map((r) => r.id)).size, 20);
    for (const [i, r] of refs.entries()) assert.deepEqual(await store.getJSON(r), { i });
  });

  test("a ref string made by one store is read by a second store on the same directory", async (t) => {
    const dir = tempDir(t);
    const a = new ObjectStore({ dir, owner: { replicaId: "replica-a", url: "http://127.0.0.1:1" } });
    const b = new ObjectStore({ dir, owner: { replicaId: "replica-b", url: "http://127.0.0.1:2" } });
    const text = (await a.create({ from: "a" })).toString();
    assert.deepEqual(await b.getJSON(text), { from: "a" });
    assert.equal((await b.stat(text)).owner, "replica-a");
  });

  test("ObjRef: plain-object and string round trips; readable form names key, size and type", () => {
    const ref = new ObjRef({ id: "emb-1", size: 2048, contentType: "application/json", owner: "replica-a", url: "http://10.0.0.5:8001" });
    assert.deepEqual(ObjRef.from(ref.toJSON()), ref);
    assert.deepEqual(ObjRef.parse(ref.toString()), ref);
    assert.deepEqual(ObjRef.from(JSON.stringify(ref)), ref);
    assert.equal(ref.toString(), "obj:emb-1?size=2048&type=application%2Fjson&owner=replica-a&url=http%3A%2F%2F10.0.0.5%3A8001");
    assert.equal(ref.describe(), "object emb-1 (2.0 KiB, application/json) owned by replica-a");
    for (const bad of [
      "obj:a?size=1",
      "obj:a?size=-1&type=x%2Fy",
      "obj:a?size=-5&type=x%2Fy",
      "obj:a?size=1.5&type=x%2Fy",
      "obj:a?size=1&type=x%2Fy&size=2",
      "obj:a?size=1&type=x%2Fy&evil=1",
      "obj:a?size=1&type=x%2Fy&url=file%3A%2F%2F%2Fetc",
      "obj:a?size=1&type=x%2Fy&url=http%3A%2F%2Fu%3Ap%40h%3A1",
      "obj:a?size=1&type=x%2Fy&owner=a%2Fb",
    ]) {
      assert.throws(() => ObjRef.parse(bad), { code: "OBJECT_REF_INVALID" }, bad);
    }
    // A ref whose size is unknown (from a bare id) leaves the size out of its text, and parses back.
    const bare = ObjRef.from("emb-2");
    assert.equal(bare.toString(), "obj:emb-2?type=application%2Foctet-stream");
    assert.deepEqual(ObjRef.parse(bare.toString()), bare);
  });
});

describe("object store: TTL", () => {
  test("an expired object answers 410 OBJECT_EXPIRED until a sweep removes it, then 404", async (t) => {
    const store = new ObjectStore({ dir: tempDir(t) });
    const ref = await store.create("short-lived", { ttl: 60 });
    const keep = await store.create("forever");
    assert.equal(await store.getJSON(ref), "short-lived");
    assert.equal((await store.stat(ref)).expiresAt, (await store.stat(ref)).created + 60_000);
    mock.timers.enable({ apis: ["Date"], now: Date.now() + 61_000 });
    t.after(() => mock.timers.reset());
    await rejectsWith(store.get(ref), "OBJECT_EXPIRED");
    await rejectsWith(store.getStream(ref), "OBJECT_EXPIRED");
    assert.equal(await store.exists(ref), false);
    assert.deepEqual(
      (await store.list()).map((o) => o.id),
      [keep.id],
    );
    assert.equal(await store.sweep(), 1);
    await rejectsWith(store.get(ref), "OBJECT_NOT_FOUND");
    assert.equal(await store.getJSON(keep), "forever");
    await rejectsWith(store.create("x", { ttl: -1 }), "INVALID_PARAMETER");
  });
});

describe("object store: limits and failed writes leave nothing", () => {
  test("over the per-object limit → 413, from a buffer, a declared size, or mid-stream", async (t) => {
    const dir = tempDir(t);
    const store = new ObjectStore({ dir, maxObjectBytes: 1000 });
    await rejectsWith(store.create(Buffer.alloc(1001)), "OBJECT_TOO_LARGE");
    await rejectsWith(store.createFromStream(Readable.from([Buffer.alloc(10)]), { size: 5000 }), "OBJECT_TOO_LARGE");
    await rejectsWith(store.createFromStream(Readable.from([Buffer.alloc(600), Buffer.alloc(600)])), "OBJECT_TOO_LARGE");
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(readdirSync(dir), []);
  });

  test("over the total cap → 507 OBJECT_STORE_FULL and no partial object", async (t) => {
    const dir = tempDir(t);
    const store = new ObjectStore({ dir, maxTotalBytes: 1_000_000 });
    const first = await store.create(Buffer.alloc(600_000, 1), { key: "first" });
    await rejectsWith(store.create(Buffer.alloc(600_000, 2), { key: "second" }), "OBJECT_STORE_FULL");
    await rejectsWith(
      store.createFromStream(Readable.from([Buffer.alloc(300_000), Buffer.alloc(300_000)]), { key: "third" }),
      "OBJECT_STORE_FULL",
    );
    assert.deepEqual(
      (await store.list()).map((o) => o.id),
      ["first"],
    );
    assert.deepEqual(temps(dir), []);
    assert.equal(existsSync(`${dir}/second.obj`), false);
    await store.delete(first);
    await store.create(Buffer.alloc(600_000, 2), { key: "second" });
  });

  test("a full store sweeps expired objects before refusing", async (t) => {
    const store = new ObjectStore({ dir: tempDir(t), maxTotalBytes: 1_000_000 });
    await store.create(Buffer.alloc(600_000), { ttl: 1 });
    mock.timers.enable({ apis: ["Date"], now: Date.now() + 2_000 });
    t.after(() => mock.timers.reset());
    await store.create(Buffer.alloc(600_000));
    assert.equal((await store.list()).length, 1);
  });

  test("an upload that fails halfway (source error or abort) leaves no visible object and no temp file", async (t) => {
    const dir = tempDir(t);
    const store = new ObjectStore({ dir });
    const failing = new Readable({ read() {} });
    failing.push(Buffer.alloc(64 * 1024, 7));
    setImmediate(() => failing.destroy(new Error("client went away")));
    await assert.rejects(store.createFromStream(failing, { key: "half" }), /client went away/);
    const controller = new AbortController();
    const slow = (async function* () {
      yield Buffer.alloc(1024);
      controller.abort();
      yield Buffer.alloc(1024);
    })();
    await rejectsWith(store.createFromStream(slow, { key: "aborted", signal: controller.signal }), "CANCELLED");
    assert.equal(await store.exists("half"), false);
    assert.equal(await store.exists("aborted"), false);
    assert.deepEqual(readdirSync(dir), []);
  });

  test("a key that exists is replaced atomically; ranges of a stream; empty objects", async (t) => {
    const store = new ObjectStore({ dir: tempDir(t) });
    await store.create("one", { key: "k" });
    await store.create("two", { key: "k" });
    assert.equal(await store.getJSON("k"), "two");
    const ref = await store.create(Buffer.from("0123456789"));
    const chunks: Buffer[] = [];
    for await (const c of await store.getStream(ref, { range: { start: 2, end: 5 } })) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), "2345");
    await rejectsWith(store.getStream(ref, { range: { start: 5, end: 10 } }), "OBJECT_RANGE_INVALID");
    const empty = await store.create(Buffer.alloc(0));
    assert.equal((await store.get(empty)).length, 0);
    for await (const _ of await store.getStream(empty)) assert.fail("an empty object has no chunks");
  });
});
