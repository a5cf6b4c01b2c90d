// Path traversal and planted files: no id, ref or request path reads anything outside the store; planted
// symlinks, hard links, FIFOs and foreign files are refused. A sentinel file sits beside the store.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { withObjectEndpoint } from "../../src/objects/endpoint.js";
import { ObjectStore } from "../../src/objects/store.js";
import { rawRequest } from "../helpers/raw-http.js";
import { Cleanups } from "../helpers/processes.js";
import { TRAVERSALS, rejectsWith, tempDir } from "./helpers.js";

const SECRET = "SENTINEL-SECRET-d41d8cd9";
const TOKEN = "obj-token";
const hooks = new Cleanups();
let root: string;
let storeDir: string;
let store: ObjectStore;
let server: Server;
let port: number;

const get = (target: string, extra: string[] = []) =>
  rawRequest(port, [
    `GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n${extra.map((h) => `${h}\r\n`).join("")}Connection: close\r\n\r\n`,
  ]);

describe("object paths never leave the store", () => {
  before(async () => {
    root = tempDir(hooks);
    storeDir = path.join(root, "store");
    mkdirSync(path.join(root, "outside"));
    writeFileSync(path.join(root, "outside", "sentinel"), SECRET);
    writeFileSync(path.join(root, "sentinel"), SECRET);
    writeFileSync(path.join(root, "sentinel.obj"), SECRET);
    store = new ObjectStore({ dir: storeDir, token: TOKEN });
    await store.create("legit", { key: "legit" });
    server = createServer(withObjectEndpoint((_q, res) => res.writeHead(404).end(), { store }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    hooks.after(() => new Promise((r) => server.close(r)));
  });
  after(() => hooks.run());

  test("every traversal spelling given to get/stat/getStream/delete is 400 OBJECT_REF_INVALID", async () => {
    for (const bad of TRAVERSALS) {
      for (const op of [store.get(bad), store.stat(bad), store.getStream(bad), store.delete(bad), store.exists(bad)]) {
        const err = await rejectsWith(op, "OBJECT_REF_INVALID");
        assert.ok(!err.message.includes(SECRET));
      }
    }
  });

  test("over HTTP: GET /objects/<traversal> is 400 and never answers the sentinel", async () => {
    const paths = [
      "/objects/../../etc/passwd",
      "/objects/../sentinel",
      "/objects/%2e%2e%2fsentinel",
      "/objects/%2e%2e/sentinel",
      "/objects/%252e%252e%252fsentinel",
      "/objects/..\\sentinel",
      "/objects/..%5csentinel",
      "/objects//etc/passwd",
      "/objects/%2Fetc%2Fpasswd",
      "/objects/a%00b",
      "/objects/legit/../../sentinel",
      "/objects/legit%2f..%2f..%2fsentinel",
      "/objects/.",
      "/objects/",
      `/objects/${"a".repeat(129)}`,
    ];
    for (const p of paths) {
      const res = await get(p);
      assert.equal(res.status, 400, `${p} → ${res.status} ${res.body}`);
      assert.equal(JSON.parse(res.body).code, "OBJECT_REF_INVALID", p);
      assert.ok(!res.body.includes(SECRET), p);
    }
    // A raw NUL in the request line never reaches us: Node's parser answers 400 itself.
    assert.equal((await rawRequest(port, ["GET /objects/a\u0000b HTTP/1.1\r\nHost: x\r\n\r\n"])).status, 400);
    // A name that is a valid id maps inside the store only: the sentinel beside the store is not it.
    const inside = await get("/objects/sentinel");
    assert.equal(inside.status, 404);
    assert.ok(!inside.body.includes(SECRET));
    assert.equal((await get("/objects/legit")).status, 200);
  });

  test("a symlink planted in the store is refused (O_NOFOLLOW), even to a valid object elsewhere", async (t) => {
    symlinkSync(path.join(root, "outside", "sentinel"), path.join(storeDir, "evil.obj"));
    const other = new ObjectStore({ dir: tempDir(t) });
    await other.create("elsewhere", { key: "linked" });
    symlinkSync(path.join(other.dir, "linked.obj"), path.join(storeDir, "linked.obj"));
    for (const id of ["evil", "linked"]) {
      await rejectsWith(store.get(id), "OBJECT_REF_INVALID", /symbolic link/);
      await rejectsWith(store.getStream(id), "OBJECT_REF_INVALID");
      const res = await get(`/objects/${id}`);
      assert.equal(res.status, 400);
      assert.ok(!res.body.includes(SECRET) && !res.body.includes("elsewhere"));
    }
    assert.deepEqual(
      (await store.list()).map((o) => o.id),
      ["legit"],
      "list skips what it refuses",
    );
  });

  test("a planted hard link, a foreign file and a FIFO are refused", async (t) => {
    const other = new ObjectStore({ dir: path.join(root, "other-store") });
    await other.create("hard", { key: "hard" });
    linkSync(path.join(other.dir, "hard.obj"), path.join(storeDir, "hard.obj"));
    await rejectsWith(store.get("hard"), "OBJECT_REF_INVALID", /hard links/);
    writeFileSync(path.join(storeDir, "foreign.obj"), SECRET);
    const foreign = await rejectsWith(store.get("foreign"), "OBJECT_REF_INVALID", /not an anyserve object/);
    assert.ok(!foreign.message.includes(SECRET));
    let haveMkfifo = true;
    try {
      execFileSync("mkfifo", [path.join(storeDir, "pipe.obj")]);
    } catch {
      haveMkfifo = false;
    }
    if (!haveMkfifo) return t.diagnostic("mkfifo not available: FIFO case skipped");
    await rejectsWith(store.get("pipe"), "OBJECT_REF_INVALID", /not a regular file/);
    assert.equal((await get("/objects/pipe")).status, 400);
  });
});
