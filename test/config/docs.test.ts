// docs/config.md stays in step with the config schema: every service field is listed with the
// schema's default and update type, every `anyserve start` flag with its field, and nothing the
// schema lacks is listed.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { flagOfField } from "../../src/cli/config-flags.js";
import { serviceFields } from "../../src/config/fields.js";
import { replicaIdentityShape } from "../../src/config/replica.js";

const doc = readFileSync(new URL("../../docs/config.md", import.meta.url), "utf8");

/** The rows of the markdown table under the heading that contains `heading`, as cells. */
function tableAfter(heading: string): string[][] {
  const at = doc.indexOf(heading);
  assert.ok(at >= 0, `docs/config.md has no section '${heading}'`);
  const lines = doc.slice(at).split("\n");
  const first = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(
      line
        .slice(1, -1)
        .split(" | ")
        .map((c) => c.trim()),
    );
  }
  return rows;
}

const code = (cell: string) => /^`([^`]+)`$/.exec(cell)?.[1];

/** How a default reads in the docs' first word. */
function shown(value: unknown): string {
  if (value === undefined) return "required";
  if (Array.isArray(value)) return JSON.stringify(value);
  return String(value);
}

test("every service field is in docs/config.md with the schema's default and update type, and no other", () => {
  // The api_server and node rows are in the same table; this test covers the services' fields.
  const rows = tableAfter("## The deployment file").filter((r) => r.length === 4 && !/^`(api_server|node)\./.test(r[0]!));
  const documented = new Map(rows.map((r) => [code(r[0]!), r]));
  const fields = serviceFields();
  for (const f of fields) {
    const row = documented.get(f.path);
    assert.ok(row, `docs/config.md lists no row for ${f.path}`);
    const firstWord = row[1]!.split(" ")[0];
    assert.equal(firstWord, shown(f.default), `${f.path}: the default in docs/config.md`);
    const update = f.meta.update === "live" ? "live" : "replace";
    assert.ok(row[3]!.startsWith(update), `${f.path}: docs/config.md says '${row[3]}', the schema '${f.meta.update}'`);
  }
  const known = new Set(fields.map((f) => f.path));
  for (const name of documented.keys()) {
    assert.ok(name && known.has(name), `docs/config.md lists '${name}', which the schema does not have`);
  }
});

test("every anyserve start flag is in docs/config.md next to its field, and no other", () => {
  const rows = tableAfter("## `anyserve start`");
  const listed = new Map(rows.map((r) => [code(r[0]!), code(r[1]!)]));
  const expected = new Map<string, string>();
  for (const f of serviceFields()) {
    const flag = flagOfField(f.path);
    if (flag) expected.set(f.default === true ? `--no-${flag.slice(2)}` : flag, f.path);
  }
  for (const key of Object.keys(replicaIdentityShape)) expected.set(flagOfField(key)!, key);
  for (const [flag, field] of expected) assert.equal(listed.get(flag), field, `docs/config.md: ${flag} sets ${field}`);
  for (const flag of listed.keys()) {
    if (flag === "--replica-config" || flag === "--token" || flag === "--inference-token") continue;
    assert.ok(flag && expected.has(flag), `docs/config.md lists ${flag}, which anyserve start does not have`);
  }
});
