// The module rules of src/, checked over its import graph (test/helpers/import-graph.ts, the
// TypeScript parser): which module may import which, no cycle between modules, and what the app
// entry and the worker entries load. A failure prints the offending import chain. The same test
// writes the module map of docs/architecture.md (`UPDATE_ARCHITECTURE_DOC=1 npm test -- architecture`)
// and fails when the map there is not the one the code has.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { describeChain, type Import, loadClosure, moduleOf, readImportGraph } from "./helpers/import-graph.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const graph = readImportGraph(path.join(ROOT, "src"));
const DOC = path.join(ROOT, "docs/architecture.md");

const BELOW_SDK = ["transport", "objects", "routing", "protocol", "util", "errors"];
const BELOW_EXECUTION = ["models", "sdk", ...BELOW_SDK];
const SERVING = ["execution", "frontend", "dashboard", "metrics", ...BELOW_EXECUTION, "version"];

/**
 * THE RULES: what each module of src/ (its top-level folder, or a top-level file) is, and the
 * modules it may import — with any kind of import, a type import is a dependency too. Read from
 * the top: commands, deployment, the two servers, the serving parts, the SDK, the shared core.
 * A new module must be added here.
 */
const RULES: [module: string, what: string, mayImport: string[]][] = [
  ["server", "`anyserve/server` (src/server.ts): the server API", ["cli", "deploy", "gateway", "replica", "config", ...SERVING]],
  ["cli", "the `anyserve` commands", ["deploy", "gateway", "replica", "config", ...SERVING]],
  ["deploy", "deployment files, placement, the controller, `Environment`", ["gateway", "replica", "config", ...SERVING]],
  [
    "gateway",
    "the API server: forwarder, control and management routes, health checks",
    ["frontend", "dashboard", "metrics", ...BELOW_SDK, "version"],
  ],
  [
    "replica",
    "a replica: dispatcher, delegation, registration loop, worker routes",
    ["execution", "frontend", "metrics", "config", ...BELOW_EXECUTION, "version"],
  ],
  ["execution", "lanes, strategies, worker threads and processes", BELOW_EXECUTION],
  ["frontend", "the REST, gRPC and fast-ingress front ends", ["protocol", "util", "errors"]],
  ["dashboard", "the dashboard page", ["util", "errors"]],
  ["metrics", "Prometheus registries and exposition", ["util", "errors"]],
  ["models", "models served with no user code: the ONNX Runtime backend, the model repository, `app:` specs", ["sdk", ...BELOW_SDK]],
  ["index", "`anyserve` (src/index.ts): the app API", ["sdk", "objects", "protocol", "util", "errors"]],
  ["sdk", "what apps use: `AnyServe`, `Context`, `Service`, `Client`, app loading", BELOW_SDK],
  ["transport", "the framed hop: frames, frame client and server, call meta", ["protocol", "util", "errors"]],
  ["objects", "the object store, refs, backends, the /objects endpoint", ["protocol", "util", "errors"]],
  ["routing", "registry, balancers, candidates, outcomes, the registration schema", ["protocol", "util", "errors"]],
  ["config", "the config schema (zod): fields, defaults, resolution, the replica document", ["util", "errors"]],
  ["protocol", "OIP types and codecs, capabilities, call types", ["util", "errors"]],
  ["util", "logging, HTTP helpers, deadlines, cancellation, env", ["errors"]],
  ["errors", "the error catalogue", []],
  ["version", "the version string", []],
];
const MAY_IMPORT = new Map(RULES.map(([m, , may]) => [m, new Set(may)]));

/**
 * Imports that break a rule, allowed until the branch that removes them lands. Each names the
 * exact file-to-file import, so nothing else slips through.
 */
const EXCEPTIONS: { from: string; to: string; why: string }[] = [];

/** What loading each entry must never load (value imports, followed to the end; `import()` and type imports load nothing). */
const NEVER_LOADED_BY = {
  modules: ["gateway", "deploy", "cli", "dashboard", "frontend", "replica", "metrics", "routing", "server"],
  files: ["util/logger.ts", "sdk/client-rest.ts", "sdk/client-grpc.ts", "objects/store.ts"],
  packages: ["pino", "zod", "yaml", "commander", "prom-client", "@grpc/grpc-js", "protobufjs", "undici"],
};
const LIGHT_ENTRIES: [entry: string, what: string][] = [
  ["index.ts", '`import … from "anyserve"` (every app, so every worker)'],
  ["execution/worker-thread.ts", "a worker thread"],
  ["execution/worker-process.ts", "a worker process"],
];

const isException = (i: Import): boolean => EXCEPTIONS.some((e) => e.from === i.from && e.to === i.file);
const internal = graph.imports.filter((i): i is Import & { file: string } => i.file !== undefined);

test("every module of src/ is in the rules table", () => {
  const modules = new Set(graph.files.map(moduleOf));
  const missing = [...modules].filter((m) => !MAY_IMPORT.has(m));
  assert.deepEqual(missing, [], `add these modules to RULES in test/architecture.test.ts: ${missing.join(", ")}`);
  for (const i of internal) assert.ok(graph.byFile.has(i.file), `${i.from}:${i.line} imports ${i.file}, which does not exist`);
});

test("modules import only what the rules table allows", () => {
  const bad = internal
    .filter((i) => moduleOf(i.from) !== moduleOf(i.file) && !MAY_IMPORT.get(moduleOf(i.from))?.has(moduleOf(i.file)) && !isException(i))
    .map(
      (i) =>
        `${i.from}:${i.line} imports ${i.file} (${i.kind}): ${moduleOf(i.from)} may import ${[...MAY_IMPORT.get(moduleOf(i.from))!].join(", ") || "nothing"}`,
    );
  assert.deepEqual(bad, [], `forbidden imports:\n  ${bad.join("\n  ")}`);
  for (const e of EXCEPTIONS) {
    if (!internal.some((i) => i.from === e.from && i.file === e.to))
      console.log(`# the exception ${e.from} → ${e.to} is no longer needed: remove it`);
  }
});

test("no cycle between modules", () => {
  const edges = moduleEdges(internal.filter((i) => !isException(i)));
  const cycles = findCycles(edges);
  const shown = cycles.map((cycle) => {
    const hops = cycle.map((m, k) => {
      const next = cycle[(k + 1) % cycle.length]!;
      const i = edges.get(m)!.get(next)![0]!;
      return `${i.from}:${i.line} → ${i.file}`;
    });
    return `${[...cycle, cycle[0]].join(" → ")}: ${hops.join("; ")}`;
  });
  assert.deepEqual(shown, [], `module cycles:\n  ${shown.join("\n  ")}`);
});

for (const [entry, what] of LIGHT_ENTRIES) {
  test(`${what} loads no server code and none of ${NEVER_LOADED_BY.packages.join(", ")}`, () => {
    const loaded = loadClosure(graph, entry);
    const bad = [...loaded]
      .filter(([key]) =>
        key.startsWith("package ")
          ? NEVER_LOADED_BY.packages.includes(key.slice(8))
          : NEVER_LOADED_BY.modules.includes(moduleOf(key)) || NEVER_LOADED_BY.files.includes(key),
      )
      .map(([key, chain]) => `${key}: ${describeChain(chain)}`);
    assert.deepEqual(bad, [], `${entry} loads:\n  ${bad.join("\n  ")}`);
  });
}

test("docs/architecture.md's module map is the code's", () => {
  const doc = readFileSync(DOC, "utf8");
  const begin = "<!-- module-map:begin (written by test/architecture.test.ts) -->";
  const end = "<!-- module-map:end -->";
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  assert.ok(a >= 0 && b > a, `docs/architecture.md has no ${begin} … ${end} section`);
  const want = `${begin}\n${moduleMap()}\n${end}`;
  const have = doc.slice(a, b + end.length);
  if (have !== want && process.env.UPDATE_ARCHITECTURE_DOC === "1") {
    writeFileSync(DOC, doc.slice(0, a) + want + doc.slice(b + end.length));
    return;
  }
  assert.equal(have, want, "docs/architecture.md's module map is out of date: run UPDATE_ARCHITECTURE_DOC=1 npm test -- architecture");
});

/** Module → imported module → the imports between them. */
function moduleEdges(imports: (Import & { file: string })[]): Map<string, Map<string, Import[]>> {
  const edges = new Map<string, Map<string, Import[]>>();
  for (const i of imports) {
    const [a, b] = [moduleOf(i.from), moduleOf(i.file)];
    if (a === b) continue;
    const out = edges.get(a) ?? edges.set(a, new Map()).get(a)!;
    (out.get(b) ?? out.set(b, []).get(b)!).push(i);
  }
  return edges;
}

/** One cycle per group of modules that reach each other (strongly connected components), as a path. */
function findCycles(edges: Map<string, Map<string, Import[]>>): string[][] {
  const reach = (from: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [from];
    while (stack.length > 0) for (const n of edges.get(stack.pop()!)?.keys() ?? []) if (!seen.has(n) && seen.add(n)) stack.push(n);
    return seen;
  };
  const done = new Set<string>();
  const cycles: string[][] = [];
  for (const m of [...edges.keys()].sort()) {
    if (done.has(m) || !reach(m).has(m)) continue;
    // The shortest way back to m, breadth first.
    const back = new Map<string, string>();
    const queue = [m];
    while (queue.length > 0 && !back.has(m)) {
      const n = queue.shift()!;
      for (const next of edges.get(n)?.keys() ?? []) {
        if (back.has(next)) continue;
        back.set(next, n);
        queue.push(next);
      }
    }
    const cycle = [m];
    for (let n = back.get(m)!; n !== m; n = back.get(n)!) cycle.unshift(n);
    cycle.unshift(cycle.pop()!);
    for (const n of cycle) done.add(n);
    cycles.push(cycle);
  }
  return cycles;
}

/** The generated part of docs/architecture.md: the rules, and the imports as they are (a diagram and a table). */
function moduleMap(): string {
  const edges = moduleEdges(internal);
  const order = RULES.map(([m]) => m);
  const rules = [
    "| module | what it is | may import |",
    "|---|---|---|",
    ...RULES.map(([m, what, may]) => `| \`${m}\` | ${what} | ${may.length ? may.map((x) => `\`${x}\``).join(" ") : "—"} |`),
  ];
  const kindOf = (imports: Import[]): string => {
    const kinds = new Set(imports.map((i) => i.kind));
    return kinds.has("value") ? "" : kinds.has("lazy") ? " (lazy)" : " (types)";
  };
  const asIs = [
    "| module | imports (“lazy”: only through `import()`, on first use; “types”: erased at build) |",
    "|---|---|",
    ...order
      .filter((m) => edges.has(m))
      .map((m) => {
        const out = [...edges.get(m)!].sort(([a], [b]) => order.indexOf(a) - order.indexOf(b));
        return `| \`${m}\` | ${out.map(([to, imports]) => `\`${to}\`${kindOf(imports)}`).join(", ")} |`;
      }),
  ];
  // The diagram leaves out an arrow A → C when A reaches C through other arrows (A → B → C).
  const reachesWithout = (from: string, to: string): boolean => {
    const seen = new Set<string>();
    const stack = [...(edges.get(from)?.keys() ?? [])].filter((n) => n !== to);
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n === to) return true;
      if (seen.has(n)) continue;
      seen.add(n);
      stack.push(...(edges.get(n)?.keys() ?? []));
    }
    return false;
  };
  const arrows = order.flatMap((m) =>
    [...(edges.get(m) ?? [])]
      .filter(([to]) => !reachesWithout(m, to))
      .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
      .map(([to, imports]) => `  ${m} ${kindOf(imports) ? "-.->" : "-->"} ${to}`),
  );
  const exceptions = EXCEPTIONS.map((e) => `- \`${e.from}\` → \`${e.to}\`: ${e.why}.`);
  return [
    "The rules (`RULES` in test/architecture.test.ts; a module imports only the modules on its row, any",
    "import counting, type imports too):",
    "",
    ...rules,
    "",
    ...(exceptions.length ? ["Allowed for now, against the rules:", "", ...exceptions, ""] : []),
    "The imports as they are. An arrow is drawn only where no longer path already links the two",
    "modules; a dashed one is only type imports or `import()`:",
    "",
    "```mermaid",
    "graph TD",
    ...arrows,
    "```",
    "",
    ...asIs,
  ].join("\n");
}
