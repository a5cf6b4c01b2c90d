/**
 * The result table: one row per scenario, as aligned text for the terminal and as Markdown for
 * docs/performance.md (kept in the results JSON, so the doc can be updated from a run verbatim).
 */

/** Medians of one scenario over the rounds; undefined figures print as "–". */
export interface Row {
  label: string;
  rps?: number;
  p50Ms?: number;
  p99Ms?: number;
  ratio?: number;
  /** What `ratio` (and the c=1 added latency) is taken against. */
  vs?: string;
  cpuUs?: number | null;
  c1P50Us?: number;
  c1AddedUs?: number;
  /** A reason instead of figures ("skipped: …"), or a warning after them. */
  note?: string;
}

const HEAD = ["scenario", "req/s", "p50 ms", "p99 ms", "ratio", "vs", "CPU µs/req", "c=1 p50 µs", "c=1 added µs"];

const fmt = (x: number | null | undefined, digits: number, sign = false): string =>
  x === undefined || x === null || Number.isNaN(x) ? "–" : `${sign && x >= 0 ? "+" : ""}${x.toFixed(digits)}`;

function cells(r: Row): string[] {
  if (r.rps === undefined) return [r.label, r.note ?? "", ...HEAD.slice(2).map(() => "")];
  return [
    r.note ? `${r.label} (${r.note})` : r.label,
    fmt(r.rps, 0),
    fmt(r.p50Ms, 2),
    fmt(r.p99Ms, 2),
    fmt(r.ratio, 2),
    r.vs ?? "",
    fmt(r.cpuUs, 0),
    fmt(r.c1P50Us, 0),
    r.c1AddedUs === 0 ? "0" : fmt(r.c1AddedUs, 0, true),
  ];
}

/** Text table: first column left-aligned, figures right-aligned; a note row spans the figures. */
export function renderText(rows: Row[]): string {
  const body = rows.map(cells);
  const widths = HEAD.map((h, i) => Math.max(h.length, ...body.filter((c) => i === 0 || c[2] !== "").map((c) => c[i]!.length)));
  const line = (c: string[]): string =>
    c[2] === ""
      ? `${c[0]!.padEnd(widths[0]!)}  ${c[1]}`
      : c.map((x, i) => (i === 0 || i === 5 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join("  ");
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(HEAD), rule, ...body.map(line)].join("\n");
}

export function renderMarkdown(rows: Row[]): string {
  const esc = (s: string): string => s.replace(/\|/g, "\\|");
  const out = [`| ${HEAD.join(" | ")} |`, `|${HEAD.map((_, i) => (i === 0 || i === 5 ? "---" : "---:")).join("|")}|`];
  for (const r of rows) {
    const c = cells(r).map(esc);
    out.push(r.rps === undefined ? `| ${c[0]} | ${c[1]} |${" |".repeat(HEAD.length - 2)}` : `| ${c.join(" | ")} |`);
  }
  return out.join("\n");
}

/** A small table of strings as aligned text (first column left, the rest right) and as Markdown. */
export function renderPlain(head: string[], rows: string[][]): { text: string; markdown: string } {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (c: string[]): string => c.map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join("  ");
  const md = (c: string[]): string => `| ${c.join(" | ")} |`;
  return {
    text: [line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n"),
    markdown: [md(head), `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`, ...rows.map(md)].join("\n"),
  };
}
