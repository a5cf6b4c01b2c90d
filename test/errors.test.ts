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
  assert.equal(codes.length, 42, "adding or retiring a code is a conscious change: update this count and docs/errors.md");
});

test("docs/errors.md lists every code with its statuses", () => {
  const doc = readFileSync(new URL("../docs/errors.md", import.meta.url), "utf8");
  for (const [code, e] of Object.entries(ERROR_CATALOGUE)) {
    assert.match(doc, new RegExp(`\\| \`${code}\` \\| ${e.http} \\|`), `${code} is missing from docs/errors.md`);
  }
});

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
