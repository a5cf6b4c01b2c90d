/**
 * The live dashboard at `/dashboard` on the API server: one self-contained HTML page (style and
 * script inline, no external resources, no build step, works offline). The script polls
 * `GET /api/services` every second, keeps a ring of the last ~2 minutes of samples per service in
 * the browser and draws the charts by hand on <canvas>. Management actions: scale a service
 * (`POST /api/scale`) and drain or undrain a replica (`POST /api/replicas/<id>/drain|undrain`).
 *
 * Signing in: the status API needs the read or control-plane token when one is configured (what
 * `anyserve up` does by default). The page asks for it in the header's field when the API server
 * answers 401, keeps it in sessionStorage (this tab only) and sends it as a bearer token; a link
 * may carry it once as `#token=…` (a fragment never reaches the server or a Referer), which the
 * page takes and removes from the address bar. The page itself carries no data and needs no token.
 *
 * Hooks for tests (stable): each service card `data-service="<name>"`, each replica row
 * `data-replica="<id>"`, charts `data-chart="rps" | "latency" | "queue"` with `data-points`
 * (samples held) and `data-last` (last value; for latency the p50), figures
 * `data-stat="requests" | "errors" | "rps" | "p50" | "p95" | "p99" | "queue_depth" | "in_flight"`,
 * buttons `data-action="scale" | "workers-start" | "workers-stop" | "drain"` (`"undrain"` while the replica drains), the scale input
 * `data-input="replicas"`, rows' `data-state` / `data-health`, the status line `#status`, the token
 * field `#token` and its form `#token-form` (class `needed` while the server wants a token).
 *
 * The style and script are exported on their own so the route can put their hashes in the
 * Content-Security-Policy (see routes.ts); they must not contain `</style>` / `</script>`.
 */

import { DASHBOARD_SCRIPT } from "./script.js";
import { DASHBOARD_STYLE } from "./style.js";

export { DASHBOARD_SCRIPT, DASHBOARD_STYLE };

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>anyserve dashboard</title>
<link rel="icon" href="data:,">
<style>${DASHBOARD_STYLE}</style>
</head>
<body>
<header class="top">
  <h1>anyserve <span class="sub">dashboard</span></h1>
  <span id="conn" class="pill">connecting</span>
  <span id="summary" class="summary"></span>
  <span class="spacer"></span>
  <form id="token-form" autocomplete="off"><label>token <input id="token" type="password" autocomplete="off" spellcheck="false" placeholder="read or control-plane token"></label> <button type="submit" id="sign-in">sign in</button></form>
</header>
<div id="status" role="status" aria-live="polite"></div>
<main>
  <noscript><p>This dashboard needs JavaScript. The same figures are at <a href="/api/services">/api/services</a>.</p></noscript>
  <div id="grid" class="grid"></div>
  <div id="empty" hidden>No services.</div>
</main>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
