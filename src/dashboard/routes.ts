/**
 * The dashboard's route on the API server: `GET /dashboard` answers the self-contained page
 * (page.ts). The page's data comes from the management API it polls (`/api/services`), so this
 * route needs no state and no token: the page carries no data, and its actions send the token
 * the user types.
 *
 * The Content-Security-Policy allows nothing from elsewhere: the inline style and script are
 * allowed by their SHA-256 hashes (stricter than 'unsafe-inline'), fetches go to the same origin
 * only, and the page may not be framed.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RouteHandler } from "../util/http.js";
import { DASHBOARD_HTML, DASHBOARD_SCRIPT, DASHBOARD_STYLE } from "./page.js";

function cspHash(source: string): string {
  return `'sha256-${createHash("sha256").update(source, "utf8").digest("base64")}'`;
}

/** The Content-Security-Policy sent with the page. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src 'self' ${cspHash(DASHBOARD_SCRIPT)}`,
  `style-src 'self' ${cspHash(DASHBOARD_STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export function dashboardRoutes(): Record<string, RouteHandler> {
  const body = Buffer.from(DASHBOARD_HTML, "utf8");
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
  const headers = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-cache",
    "content-security-policy": DASHBOARD_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    etag,
  };
  const page = (req: IncomingMessage, res: ServerResponse): void => {
    // no-cache lets the browser keep the page but makes it ask first; an unchanged page is a 304.
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, "content-length": body.length });
    res.end(body);
  };
  return { "GET /dashboard": page };
}
