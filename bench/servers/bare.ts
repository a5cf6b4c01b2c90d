/**
 * The baseline every ratio divides by: a bare node:http server doing what a real handler must do
 * at minimum — read the whole body, JSON.parse it, and answer a small JSON. The answer is the same
 * 91-byte OIP response the full path returns for the no-op handler, so both sides move the same
 * bytes. Run as a child of bench/run.ts; reports `{ url }` over IPC and exits when the parent goes.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let request: { inputs?: unknown };
    try {
      request = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { inputs?: unknown };
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end('{"error":"invalid JSON"}');
      return;
    }
    // Built per request, like a handler's return value encoded by a framework.
    const out = JSON.stringify({
      model_name: "noop",
      outputs: [{ name: "ok", datatype: "BOOL", shape: [1], data: [Array.isArray(request.inputs)] }],
    });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
    res.end(out);
  });
});

server.listen(0, "127.0.0.1", () => {
  process.send!({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
process.on("disconnect", () => process.exit(0));
