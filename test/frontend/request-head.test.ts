// The fast ingress's header bag (request-head.ts headerBag): what node:http's `req.headers` holds
// for the same request, read off a real node:http server, and one key order — hence one V8 hidden
// class — for one set of names, whatever order the client sent them in.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { checkHead, headerBag, keptHeaders } from "../../src/frontend/fast-ingress/request-head.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** `[name, value, …]` as llhttp hands it over. */
const flat = (pairs: [string, string][]): string[] => pairs.flat();

/** What a node:http server makes of these header lines: `req.headers` and `req.rawHeaders`. */
async function nodeHttpHeaders(
  t: test.TestContext,
  pairs: [string, string][],
): Promise<{ headers: http.IncomingHttpHeaders; raw: string[] }> {
  let seen: { headers: http.IncomingHttpHeaders; raw: string[] } | undefined;
  const server = http.createServer((req, res) => {
    seen = { headers: { ...req.headers }, raw: req.rawHeaders };
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.write(`GET / HTTP/1.1\r\n${pairs.map(([n, v]) => `${n}: ${v}\r\n`).join("")}Connection: close\r\n\r\n`);
    });
    socket.resume();
    socket.on("end", () => resolve());
    socket.on("error", reject);
  });
  assert.ok(seen, "the server saw the request");
  return seen;
}

test("the bag holds what node:http's req.headers holds: lower-case names, first-wins and joined repeats in arrival order", async (t) => {
  const pairs: [string, string][] = [
    ["Host", "example"],
    ["X-Capability-Type", "chat"],
    ["Content-Type", "application/json"],
    ["Accept", "a/1"],
    ["content-type", "text/plain"],
    ["X-Capability-Model", "m"],
    ["accept", "a/2"],
    ["X-Custom", "one"],
    ["Cookie", "k=1"],
    ["x-custom", "two"],
    ["ACCEPT", "a/3"],
  ];
  const seen = await nodeHttpHeaders(t, pairs);
  const bag = headerBag(seen.raw);
  assert.deepEqual({ ...bag }, seen.headers);
  assert.equal(bag["content-type"], "application/json", "content-type: the first one wins");
  assert.equal(bag.accept, "a/1, a/2, a/3", "others are joined in the order they came");
  assert.equal(bag["x-custom"], "one, two");
});

test("past the insertion-sort limit (more than 16 headers) the bag is the same as node:http's", async (t) => {
  const pairs: [string, string][] = [];
  for (let i = 40; i > 0; i--) pairs.push([`X-H${i % 7}`, `v${i}`], [`Y-${i}`, String(i)]);
  pairs.push(["Host", "h"], ["X-H3", "last"]);
  const seen = await nodeHttpHeaders(t, pairs);
  const bag = headerBag(seen.raw);
  assert.deepEqual({ ...bag }, seen.headers);
  assert.equal(String(bag["x-h3"]).split(", ").at(-1), "last", "repeats keep their arrival order");
});

test("one set of names gives one key order whatever the order it came in (wrk sends a new order each run)", () => {
  const pairs: [string, string][] = [
    ["Host", "127.0.0.1:8000"],
    ["Content-Type", "application/json"],
    ["X-Capability-Type", "noop"],
    ["Content-Length", "222"],
  ];
  const orders = [
    [0, 1, 2, 3],
    [2, 0, 3, 1],
    [3, 2, 1, 0],
    [1, 3, 0, 2],
  ];
  const keys = orders.map((o) => Object.keys(headerBag(flat(o.map((i) => pairs[i]!)))));
  for (const k of keys) assert.deepEqual(k, ["content-length", "content-type", "host", "x-capability-type"]);
});

test("bags of one set of names share V8's hidden class, whatever the order (checked in a node with --allow-natives-syntax)", async () => {
  // %HaveSameMap is V8's own answer; it needs the flag, so it runs in a child process.
  const script = `
    import { headerBag } from ${JSON.stringify(path.join(HERE, "../../src/frontend/fast-ingress/request-head.ts"))};
    const sameMap = new Function("a", "b", "return %HaveSameMap(a, b)");
    const a = headerBag(["Host", "h", "Content-Type", "application/json", "X-Capability-Type", "noop", "Content-Length", "2"]);
    const b = headerBag(["Content-Length", "2", "X-Capability-Type", "noop", "Host", "h", "Content-Type", "application/json"]);
    const c = headerBag(["Host", "h", "Content-Length", "2"]);
    console.log(JSON.stringify({ same: sameMap(a, b), other: sameMap(a, c) }));
  `;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ["--allow-natives-syntax", "--import", "tsx", "--input-type=module", "-e", script],
      { cwd: path.join(HERE, "../..") },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
  assert.deepEqual(JSON.parse(out.trim()), { same: true, other: false });
});

test("header lines past node:http's count are dropped as node:http drops them, not refused", async (t) => {
  const pairs = Array.from({ length: 1300 }, (_, i): [string, string] => [i === 0 ? "Host" : `X-H${i}`, String(i)]);
  const node = await nodeHttpHeaders(t, pairs);
  // The bag is made of what the fast ingress collected (llhttp hands it over in lists of 32).
  const collected = flat(pairs);
  assert.deepEqual(headerBag(keptHeaders(collected, 1000)), node.headers);
  assert.equal(Object.keys(node.headers).length, 1000);
  assert.equal(keptHeaders(collected.slice(0, 20), 1000).length, 20);
});

test("head rules on the bag: HTTP/1.1 needs Host, an Expect other than 100-continue is a 417, HTTP/1.0 needs neither", () => {
  assert.deepEqual(checkHead(headerBag(["Content-Length", "0"]), 1, 1), { refuse: 400 });
  assert.deepEqual(checkHead(headerBag(["Content-Length", "0"]), 1, 0), { refuse: undefined, expectContinue: false });
  assert.deepEqual(checkHead(headerBag(["Host", "h", "Expect", "100-Continue"]), 1, 1), { refuse: undefined, expectContinue: true });
  assert.deepEqual(checkHead(headerBag(["Host", "h", "Expect", "fly"]), 1, 1), { refuse: 417 });
  assert.deepEqual(checkHead(headerBag(["Expect", "fly"]), 1, 0), { refuse: undefined, expectContinue: false });
});

test("names are lower-cased alike however many spellings came before (the remembered names are bounded)", () => {
  // More distinct spellings than the cache keeps: it empties and fills again, and every bag is still right.
  for (let i = 0; i < 2500; i++) {
    const bag = headerBag(
      flat([
        [`X-Custom-${i}`, "a"],
        ["CONTENT-TYPE", "application/json"],
        [`x-CUSTOM-${i}`, "b"],
        ["Host", "h"],
      ]),
    );
    assert.deepEqual(bag, { "content-type": "application/json", host: "h", [`x-custom-${i}`]: "a, b" });
  }
});
