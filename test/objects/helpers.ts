/** Temp directories and small assertions shared by the object tests. */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { AnyServeError, type ErrorCode } from "../../src/errors.js";

/** A fresh directory removed after the test (or suite). */
export function tempDir(t: { after(fn: () => unknown): void }, prefix = "anyserve-obj-"): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Asserts that `p` rejects with an AnyServeError of `code`. */
export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<AnyServeError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof AnyServeError, `expected AnyServeError ${code}, got ${caught === undefined ? "success" : String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

/** Temp files left in a store directory. */
export function temps(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith(".tmp."));
}

/** Spellings of a path that leaves the store (dot segments, encodings, absolute paths, NUL), as ids/refs. */
export const TRAVERSALS = [
  "../../etc/passwd",
  "..",
  "../sentinel",
  "%2e%2e%2f%2e%2e%2fsentinel",
  "%252e%252e%252fsentinel",
  "..\\..\\sentinel",
  "..%5c..%5csentinel",
  "/etc/passwd",
  "a%00b",
  "a\u0000b",
  "obj:../sentinel?size=1&type=application%2Foctet-stream",
  "obj:%2e%2e%2fsentinel?size=1&type=application%2Foctet-stream",
  "obj:a%00b?size=1&type=application%2Foctet-stream",
  '{"id":"../sentinel","size":1,"contentType":"application/octet-stream"}',
  "x".repeat(129),
  "",
];
