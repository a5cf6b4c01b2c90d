/** Dashboard script, part: setup, helpers, the status line and token, the management API client, polling and rendering. */
export const SCRIPT_CORE = String.raw`
(function () {
  "use strict";
  var POLL_MS = 1000;
  var WINDOW_MS = 120000;
  var MAX_SAMPLES = 150;
  var TOKEN_KEY = "anyserve.dashboard.token";
  var DASH = "\u2013";
  var COLORS = { rps: "#2563eb", p50: "#16a34a", p95: "#d97706", p99: "#dc2626", queue: "#7c3aed", inflight: "#0891b2" };

  var cards = new Map();
  var grid = document.getElementById("grid");
  var empty = document.getElementById("empty");
  var statusEl = document.getElementById("status");
  var conn = document.getElementById("conn");
  var summary = document.getElementById("summary");
  var tokenInput = document.getElementById("token");
  var statusFromPoll = false;
  var everLoaded = false;

  // ---- small helpers -------------------------------------------------------------------------
  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
  function obj(v) { return v !== null && typeof v === "object" && !Array.isArray(v) ? v : {}; }
  function arr(v) { return Array.isArray(v) ? v : []; }
  function text(v) {
    if (typeof v === "string" && v !== "") return v;
    if (num(v) !== null) return String(v);
    if (typeof v === "boolean") return v ? "on" : "off";
    return DASH;
  }
  function fmtInt(v) { v = num(v); return v === null ? DASH : Math.round(v).toLocaleString("en-US"); }
  function fmtRate(v) { v = num(v); return v === null ? DASH : v >= 100 ? v.toFixed(0) : v.toFixed(1); }
  function fmtMs(v) {
    v = num(v);
    if (v === null) return DASH;
    if (v >= 10000) return (v / 1000).toFixed(1) + " s";
    return (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) + " ms";
  }
  function fmtAxis(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + "M";
    if (v >= 1e3) return (v / 1e3).toFixed(v >= 1e4 ? 0 : 1) + "k";
    if (v >= 10 || Number.isInteger(v)) return v.toFixed(0);
    return v >= 1 ? v.toFixed(1) : v.toPrecision(1);
  }
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    var e = Math.pow(10, Math.floor(Math.log10(v)));
    var f = v / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * e;
  }
  function el(tag, attrs, kids) {
    var n = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") n.textContent = attrs[k];
      else if (k === "class") n.className = attrs[k];
      else n.setAttribute(k, attrs[k]);
    }
    if (kids) for (var i = 0; i < kids.length; i++) n.appendChild(kids[i]);
    return n;
  }
  function setText(n, v) { if (n.textContent !== v) n.textContent = v; }
  function setBadge(n, label, tone) {
    setText(n, label);
    var cls = "badge" + (tone ? " " + tone : "");
    if (n.className !== cls) n.className = cls;
  }
  function toneOf(v) {
    switch (v) {
      case "scheduled": case "running": case "healthy": return "good";
      case "starting": case "restarting": case "draining": return "warn";
      case "unschedulable": case "crash_looping": case "unhealthy": case "ejected": case "failed": return "bad";
      default: return "";
    }
  }

  // ---- status line and token -------------------------------------------------------------------
  function setStatus(msg, kind) {
    statusEl.className = msg ? kind || "info" : "";
    setText(statusEl, msg || "");
  }
  function readToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  function keepToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the field still works for this page */ }
  }
  // A link may carry the token once, in the fragment (#token=…: never sent to the server, nor in a
  // Referer): it is kept for this tab and removed from the address bar and history at once.
  (function tokenFromFragment() {
    var m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!m) return;
    var value = "";
    try { value = decodeURIComponent(m[1]); } catch (e) { value = ""; }
    if (value) keepToken(value);
    history.replaceState(null, "", location.pathname + location.search);
  })();
  tokenInput.value = readToken();
  var signIn = document.getElementById("token-form");
  signIn.addEventListener("submit", function (e) {
    e.preventDefault();
    keepToken(tokenInput.value.trim());
    poll();
  });
  tokenInput.addEventListener("input", function () { keepToken(tokenInput.value.trim()); });
  // Shown while the API server refuses us for want of a token (401): the field asks for it.
  function needToken(needed) {
    signIn.classList.toggle("needed", needed);
    if (needed && document.activeElement !== tokenInput) tokenInput.focus();
  }

  // ---- the management API --------------------------------------------------------------------
  function errorText(status, data) {
    var d = obj(data);
    if (typeof d.error === "string") return (typeof d.code === "string" ? d.code + ": " : "") + d.error;
    if (d.error && typeof d.error === "object" && typeof d.error.message === "string") return d.error.message;
    return "HTTP " + status;
  }
  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    var token = tokenInput.value.trim();
    if (token) headers["Authorization"] = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    var ctrl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, 10000) : 0;
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
      signal: ctrl ? ctrl.signal : undefined
    }).then(function (res) {
      return res.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        if (!res.ok) {
          var err = new Error(errorText(res.status, data));
          err.status = res.status;
          throw err;
        }
        return data;
      });
    }, function (err) {
      throw new Error(err && err.name === "AbortError" ? "no answer within 10 s" : "network error: " + (err && err.message || err));
    }).finally(function () { if (timer) clearTimeout(timer); });
  }

  // ---- polling -------------------------------------------------------------------------------
  var pollTimer = 0;
  function poll() {
    clearTimeout(pollTimer);
    api("GET", "/api/services").then(function (data) {
      render(obj(data));
      everLoaded = true;
      needToken(false);
      conn.className = "pill live";
      setText(conn, "live " + new Date().toLocaleTimeString());
      if (statusFromPoll) { setStatus(""); statusFromPoll = false; }
    }, function (err) {
      conn.className = "pill stale";
      if (err.status === 401) {
        needToken(true);
        setText(conn, "signed out");
        setStatus(tokenInput.value.trim()
          ? "this token is not accepted: enter the read or control-plane token"
          : "this API server needs a token: enter the read or control-plane token (anyserve up keeps it in .anyserve/token beside the deployment file)", "error");
      } else {
        setText(conn, everLoaded ? "stale" : "offline");
        setStatus("GET /api/services: " + err.message, "error");
      }
      statusFromPoll = true;
    }).finally(function () {
      clearTimeout(pollTimer);
      pollTimer = setTimeout(poll, POLL_MS);
    });
  }

  function render(data) {
    var list = arr(data.services).filter(function (s) { return s && typeof s.name === "string"; });
    var now = num(data.time) !== null ? data.time : Date.now();
    var seen = new Set();
    var totalRps = 0, totalReplicas = 0;
    for (var i = 0; i < list.length; i++) {
      var s = list[i];
      seen.add(s.name);
      var c = cards.get(s.name);
      if (!c) { c = makeCard(s.name); cards.set(s.name, c); }
      if (grid.children[i] !== c.root) grid.insertBefore(c.root, grid.children[i] || null);
      updateCard(c, s, now);
      totalRps += num(obj(s.stats).rps) || 0;
      totalReplicas += arr(s.replicas).length;
    }
    cards.forEach(function (c, name) {
      if (!seen.has(name)) { c.root.remove(); cards.delete(name); }
    });
    empty.hidden = list.length > 0;
    setText(summary, list.length + " service" + (list.length === 1 ? "" : "s") + " \u00b7 " +
      totalReplicas + " replica" + (totalReplicas === 1 ? "" : "s") + " \u00b7 " + fmtRate(totalRps) + " req/s");
  }

`;
