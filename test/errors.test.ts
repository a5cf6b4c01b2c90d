// The error catalogue: codes are stable keys, statuses are sane, and docs/errors.md lists each one.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { AnyServeError, ERROR_CATALOGUE, GrpcStatus, isErrorCode } from "../src/errors.js";

const codes = Object.keys(ERROR_CATALOGUE);

test("every code is UPPER_SNAKE, with an HTTP 4xx/5xx and a known gRPC status", () => {
  const grpc = new Set<number>(Object.values(GrpcStatus));
  for (const [code, e] of Object.entries(ERROR_CATALOGUE)) {
    assert.match(code, /^[A-Z][A-Z0-9_]+$/);
    assert.ok(e.http >= 400 && e.http < 600, code);
    assert.ok(grpc.has(e.grpc) && (e.grpc as number) !== 0, code);
  }
  assert.equal(codes.length, 54, "adding or retiring a code is a conscious change: update this count and docs/errors.md");
});

test("docs/errors.md's catalogue table is the catalogue: HTTP, gRPC, retryable and when, and no other code", () => {
  const doc = readFileSync(new URL("../docs/errors.md", import.meta.url), "utf8");
  const rows = catalogueRows(doc);
  const grpcName = new Map<number, string>(Object.entries(GrpcStatus).map(([name, n]) => [n, name]));
  for (const [code, e] of Object.entries(ERROR_CATALOGUE)) {
    const row = rows.get(code);
    assert.ok(row, `${code} is missing from the table in docs/errors.md`);
    assert.deepEqual(
      row,
      { http: String(e.http), grpc: grpcName.get(e.grpc), retryable: e.retryable ? "yes" : "no", when: e.when },
      `docs/errors.md's row for ${code} disagrees with src/errors.ts`,
    );
  }
  const unknown = [...rows.keys()].filter((code) => !isErrorCode(code));
  assert.deepEqual(unknown, [], "docs/errors.md lists codes src/errors.ts does not have");
  assert.equal(rows.size, codes.length);
});

/** The rows of the `| code | HTTP | gRPC | retryable | when |` table, by code; a code listed twice fails. */
function catalogueRows(doc: string): Map<string, { http: string; grpc: string; retryable: string; when: string }> {
  const lines = doc.split("\n");
  const header = lines.findIndex((l) => /^\| code \| HTTP \| gRPC \| retryable \| when \|$/.test(l));
  assert.ok(header >= 0, "docs/errors.md has no catalogue table");
  const rows = new Map<string, { http: string; grpc: string; retryable: string; when: string }>();
  // Row cells are split on " | " (a bare "|" may appear inside backticks in a `when` text, never " | ").
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line.slice(2, -2).split(" | ");
    assert.equal(cells.length, 5, `malformed row in docs/errors.md: ${line}`);
    const [code = "", http = "", grpc = "", retryable = "", when = ""] = cells;
    const name = /^`([A-Z0-9_]+)`$/.exec(code)?.[1];
    assert.ok(name, `the code cell of a row in docs/errors.md is not a \`CODE\`: ${line}`);
    assert.ok(!rows.has(name), `${name} is listed twice in docs/errors.md`);
    rows.set(name, { http, grpc, retryable, when });
  }
  return rows;
}

test("errors cross boundaries as plain objects and are rebuilt with their code", () => {
  const e = new AnyServeError("QUEUE_FULL", "queue of type=chat is full (100)");
  const wire = JSON.parse(JSON.stringify(e.toWire())) as ReturnType<AnyServeError["toWire"]>;
  const back = AnyServeError.fromWire(wire);
  assert.equal(back.code, "QUEUE_FULL");
  assert.equal(back.httpStatus, 503);
  assert.equal(back.retryable, true);
  assert.equal(AnyServeError.fromWire({ code: "NOPE" as never, message: "x" }).code, "INTERNAL");
  assert.equal(AnyServeError.from(new Error("user bug")).code, "WORKER_ERROR");
  assert.equal(AnyServeError.from(Object.assign(new Error("x"), { code: "INVALID_TENSOR" })).code, "INVALID_TENSOR");
  assert.ok(isErrorCode("DEADLINE_EXCEEDED"));
  assert.deepEqual(e.toJSON(), { error: "queue of type=chat is full (100)", code: "QUEUE_FULL" });
});
