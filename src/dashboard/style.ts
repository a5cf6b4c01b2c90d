/** The dashboard page's stylesheet (inline in the page; its hash goes into the CSP). */
export const DASHBOARD_STYLE = `
:root {
  --bg: #f5f6f8; --card: #ffffff; --text: #1f2328; --muted: #667085; --line: #e4e7ec;
  --accent: #2563eb; --ok: #15803d; --ok-bg: #dcfce7; --warn: #a16207; --warn-bg: #fef9c3;
  --bad: #b91c1c; --bad-bg: #fee2e2; --idle: #475467; --idle-bg: #eef0f3;
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--text); }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top {
  position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; align-items: center; gap: 12px 20px;
  padding: 12px 24px; background: var(--card); border-bottom: 1px solid var(--line);
}
header.top h1 { margin: 0; font-size: 18px; font-weight: 650; letter-spacing: -0.01em; }
header.top h1 .sub { font-weight: 400; color: var(--muted); }
header.top form { margin: 0; display: flex; align-items: center; gap: 6px; }
header.top form.needed input { border-color: var(--bad); outline: 2px solid var(--bad-bg); }
header.top .summary { color: var(--muted); }
header.top .spacer { flex: 1; }
header.top label { color: var(--muted); font-size: 13px; display: flex; align-items: center; gap: 6px; }
input { font: inherit; color: inherit; border: 1px solid #cfd4dc; border-radius: 6px; padding: 4px 8px; background: #fff; }
input:focus { outline: 2px solid #bfd3fe; border-color: var(--accent); }
input[type=password] { width: 200px; }
input[type=number] { width: 72px; }
button {
  font: inherit; font-size: 13px; border: 1px solid #cfd4dc; background: #fff; color: var(--text);
  border-radius: 6px; padding: 4px 12px; cursor: pointer;
}
button:hover:not(:disabled) { background: #f2f4f7; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.primary:hover:not(:disabled) { background: #1d4ed8; }
button:disabled { opacity: 0.55; cursor: default; }
.pill { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; padding: 2px 10px; border-radius: 999px; background: var(--idle-bg); color: var(--idle); white-space: nowrap; }
.pill::before { content: ""; width: 7px; height: 7px; border-radius: 50%; background: currentColor; }
.pill.live { background: var(--ok-bg); color: var(--ok); }
.pill.stale { background: var(--bad-bg); color: var(--bad); }
#status { margin: 12px 24px 0; padding: 8px 12px; border-radius: 8px; font-size: 13px; }
#status:empty { display: none; }
#status.info { background: #e0eaff; color: #1e3a8a; }
#status.ok { background: var(--ok-bg); color: var(--ok); }
#status.error { background: var(--bad-bg); color: var(--bad); }
main { padding: 16px 24px 32px; }
#empty { color: var(--muted); padding: 40px 0; text-align: center; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 16px; align-items: start; }
@media (max-width: 560px) { .grid { grid-template-columns: 1fr; } main { padding: 12px; } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 16px 18px; box-shadow: 0 1px 2px rgba(16, 24, 40, 0.04); min-width: 0; }
.card > .head { display: flex; align-items: center; gap: 10px; }
.card > .head h2 { margin: 0; font-size: 16px; font-weight: 650; overflow: hidden; text-overflow: ellipsis; }
.card .reason { margin-top: 6px; color: var(--bad); font-size: 13px; }
.card .reason:empty { display: none; }
.badge { display: inline-block; font-size: 12px; line-height: 18px; padding: 0 8px; border-radius: 999px; background: var(--idle-bg); color: var(--idle); white-space: nowrap; }
.badge.good { background: var(--ok-bg); color: var(--ok); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.facts { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 10px 0 0; color: var(--muted); font-size: 13px; }
.facts b { color: var(--text); font-weight: 550; }
.stats { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 8px; margin: 14px 0 4px; }
.stat { background: #f9fafb; border: 1px solid #eef0f3; border-radius: 8px; padding: 6px 10px; min-width: 0; }
.stat .k { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; }
.stat .v { font-size: 17px; font-weight: 600; font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.stat .v small { font-size: 12px; font-weight: 500; color: var(--muted); }
.charts { display: grid; grid-template-columns: 1fr; gap: 10px; margin-top: 12px; }
figure.chart { margin: 0; }
figure.chart figcaption { display: flex; justify-content: space-between; gap: 8px; font-size: 12px; color: var(--muted); margin-bottom: 2px; }
figure.chart figcaption .legend { display: flex; gap: 10px; font-variant-numeric: tabular-nums; }
figure.chart figcaption .legend span::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 2px; margin-right: 4px; background: var(--c); }
figure.chart canvas { display: block; width: 100%; height: 88px; }
h3 { font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); font-weight: 600; margin: 16px 0 6px; }
table { width: 100%; border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th { text-align: left; font-weight: 550; color: var(--muted); font-size: 12px; border-bottom: 1px solid var(--line); padding: 4px 6px; white-space: nowrap; }
td { border-bottom: 1px solid #f0f1f4; padding: 5px 6px; white-space: nowrap; }
td.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; overflow: hidden; text-overflow: ellipsis; max-width: 160px; }
th.n, td.n { text-align: right; }
td.workers .w { display: inline-block; min-width: 1.4em; text-align: center; border-radius: 4px; }
td.workers .w.warm { color: var(--ok); font-weight: 600; }
td.workers .w.failed.nz { background: var(--bad-bg); color: var(--bad); font-weight: 600; }
td.workers .sep { color: #c0c5cd; }
td.workers.nodata > span { display: none; }
td.workers.nodata::after { content: "–"; }
td.act { text-align: right; }
td.state .restarts { margin-left: 4px; font-size: 12px; color: var(--warn); }
td.state .restarts:empty { display: none; }
.none { color: var(--muted); font-size: 13px; }
.controls { display: flex; align-items: center; gap: 8px; margin-top: 14px; padding-top: 12px; border-top: 1px solid var(--line); }
.controls label { color: var(--muted); font-size: 13px; }
`;
