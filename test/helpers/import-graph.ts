/**
 * The import graph of src/, read with the TypeScript compiler's parser: every `import`, `export …
 * from` and `import()` of every file, resolved to a file of src/ or a package name. Used by
 * test/architecture.test.ts to check the module rules and to draw docs/architecture.md's map.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import ts from "typescript";

/**
 * How an import loads its target: `value` when the importing module is evaluated, `type` never
 * (erased by the compiler), `lazy` when an `import()` runs.
 */
export type ImportKind = "value" | "type" | "lazy";

export interface Import {
  /** The importing file, relative to src/ (`gateway/forwarder.ts`). */
  from: string;
  line: number;
  kind: ImportKind;
  /** A file relative to src/, or undefined for a package. */
  file?: string;
  /** The package's name (`@grpc/grpc-js`, `zod`) for a bare specifier; node: builtins are left out. */
  pkg?: string;
}

export interface ImportGraph {
  files: string[];
  imports: Import[];
  /** Imports by importing file. */
  byFile: Map<string, Import[]>;
}

const BUILTINS = new Set(builtinModules);

/** A file's top-level module: its first folder under src/, or the file's name without `.ts` (`errors`, `index`). */
export function moduleOf(file: string): string {
  const [first, second] = file.split("/");
  return second === undefined ? first!.replace(/\.ts$/, "") : first!;
}

function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name);
      return statSync(full).isDirectory() ? walk(full) : name.endsWith(".ts") && !name.endsWith(".d.ts") ? [full] : [];
    });
}

/** Reads every .ts file under `srcDir`. */
export function readImportGraph(srcDir: string): ImportGraph {
  const files = walk(srcDir).map((f) => path.relative(srcDir, f).split(path.sep).join("/"));
  const imports = files.flatMap((file) => importsOf(srcDir, file));
  const byFile = new Map<string, Import[]>(files.map((f) => [f, []]));
  for (const i of imports) byFile.get(i.from)!.push(i);
  return { files, imports, byFile };
}

function importsOf(srcDir: string, file: string): Import[] {
  const source = ts.createSourceFile(file, readFileSync(path.join(srcDir, file), "utf8"), ts.ScriptTarget.ES2022, true);
  const out: Import[] = [];
  const add = (spec: ts.Expression | undefined, kind: ImportKind, at: ts.Node): void => {
    if (!spec || !ts.isStringLiteralLike(spec)) return;
    const target = resolve(file, spec.text);
    if (target) out.push({ from: file, line: source.getLineAndCharacterOfPosition(at.getStart(source)).line + 1, kind, ...target });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, importKind(node.importClause), node);
    else if (ts.isExportDeclaration(node) && node.moduleSpecifier) add(node.moduleSpecifier, exportKind(node), node);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], "lazy", node);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal as ts.Expression, "type", node);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** `import type …`, or only `type` names: erased. Anything else (a default, a namespace, a side-effect import) loads the module. */
function importKind(clause: ts.ImportClause | undefined): ImportKind {
  if (!clause) return "value";
  if (clause.isTypeOnly) return "type";
  const named = clause.namedBindings;
  if (clause.name || !named || !ts.isNamedImports(named)) return "value";
  return named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly) ? "type" : "value";
}

function exportKind(node: ts.ExportDeclaration): ImportKind {
  if (node.isTypeOnly) return "type";
  const clause = node.exportClause;
  return clause && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly) ? "type" : "value";
}

function resolve(from: string, spec: string): { file: string } | { pkg: string } | undefined {
  if (spec.startsWith(".")) {
    const file = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.js$/, ".ts");
    return { file };
  }
  if (spec.startsWith("node:") || BUILTINS.has(spec)) return undefined;
  const parts = spec.split("/");
  return { pkg: spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]! };
}

/** The chain of imports from `entry` to every file it loads when evaluated (value imports only). */
export function loadClosure(graph: ImportGraph, entry: string): Map<string, Import[]> {
  const chains = new Map<string, Import[]>([[entry, []]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const i of graph.byFile.get(file) ?? []) {
      if (i.kind !== "value") continue;
      const key = i.file ?? `package ${i.pkg}`;
      if (chains.has(key)) continue;
      chains.set(key, [...chains.get(file)!, i]);
      if (i.file) queue.push(i.file);
    }
  }
  return chains;
}

/** `a.ts:12 → b.ts:3 → c.ts` */
export function describeChain(chain: Import[]): string {
  if (chain.length === 0) return "(the entry itself)";
  return [...chain.map((i) => `${i.from}:${i.line}`), chain.at(-1)!.file ?? `package ${chain.at(-1)!.pkg}`].join(" → ");
}
