/**
 * The dashboard page's script (inline in the page; its hash goes into the CSP): polls
 * `GET /api/services`, keeps ~2 minutes of samples per service, draws the charts, runs the
 * management actions. Must not contain `</script>`.
 */
export const DASHBOARD_SCRIPT = String.raw`
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
  tokenInput.value = readToken();
  document.getElementById("token-form").addEventListener("submit", function (e) { e.preventDefault(); });
  tokenInput.addEventListener("input", function () {
    try {
      if (tokenInput.value) sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the field still works for this page */ }
  });

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
        if (!res.ok) throw new Error(errorText(res.status, data));
        return data;
      });
    }, function (err) {
      throw new Error(err && err.name === "AbortError" ? "no answer within 10 s" : "network error: " + (err && err.message || err));
    }).finally(function () { if (timer) clearTimeout(timer); });
  }

  // ---- polling -------------------------------------------------------------------------------
  function poll() {
    api("GET", "/api/services").then(function (data) {
      render(obj(data));
      everLoaded = true;
      conn.className = "pill live";
      setText(conn, "live " + new Date().toLocaleTimeString());
      if (statusFromPoll) { setStatus(""); statusFromPoll = false; }
    }, function (err) {
      conn.className = "pill stale";
      setText(conn, everLoaded ? "stale" : "offline");
      setStatus("GET /api/services: " + err.message, "error");
      statusFromPoll = true;
    }).finally(function () {
      setTimeout(poll, POLL_MS);
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

  // ---- a service card ------------------------------------------------------------------------
  function stat(label, key) {
    var v = el("div", { "class": "v", "data-stat": key, text: DASH });
    return { box: el("div", { "class": "stat" }, [el("div", { "class": "k", text: label }), v]), v: v };
  }
  function chart(key, title, series) {
    var legend = el("span", { "class": "legend" });
    var items = series.map(function (s) {
      var item = el("span", { title: s.label });
      item.style.setProperty("--c", s.color);
      legend.appendChild(item);
      return item;
    });
    var canvas = el("canvas", { "data-chart": key, "data-points": "0", "data-last": "", role: "img", "aria-label": title });
    var fig = el("figure", { "class": "chart" }, [el("figcaption", null, [el("span", { text: title }), legend]), canvas]);
    return { fig: fig, canvas: canvas, series: series, items: items };
  }

  function makeCard(name) {
    var c = { name: name, samples: [], rows: new Map(), busy: false };
    c.title = el("h2", { text: name, title: name });
    c.status = el("span", { "class": "badge" });
    c.reason = el("div", { "class": "reason" });
    c.facts = el("div", { "class": "facts" });
    c.stats = {
      requests: stat("requests", "requests"),
      errors: stat("errors", "errors"),
      rps: stat("req/s", "rps"),
      inflight: stat("in flight", "in_flight"),
      p50: stat("p50", "p50"),
      p95: stat("p95", "p95"),
      p99: stat("p99", "p99"),
      queue: stat("queue depth", "queue_depth")
    };
    var statsBox = el("div", { "class": "stats" });
    ["requests", "errors", "rps", "inflight", "p50", "p95", "p99", "queue"].forEach(function (k) { statsBox.appendChild(c.stats[k].box); });
    c.charts = [
      chart("rps", "requests / s", [{ key: "rps", label: "req/s", color: COLORS.rps, fmt: fmtRate, fill: true }]),
      chart("latency", "latency (ms)", [
        { key: "p50", label: "p50", color: COLORS.p50, fmt: fmtMs },
        { key: "p95", label: "p95", color: COLORS.p95, fmt: fmtMs },
        { key: "p99", label: "p99", color: COLORS.p99, fmt: fmtMs }
      ]),
      chart("queue", "queue depth / in flight", [
        { key: "queue", label: "queue", color: COLORS.queue, fmt: fmtInt, fill: true },
        { key: "inflight", label: "in flight", color: COLORS.inflight, fmt: fmtInt }
      ])
    ];
    c.tbody = el("tbody");
    var head = el("tr", null, [
      el("th", { text: "replica" }), el("th", { text: "state" }), el("th", { "class": "n", text: "pid" }),
      el("th", { text: "health" }), el("th", { "class": "n", text: "in flight" }),
      el("th", { "class": "n", text: "workers w/s/i/f", title: "worker threads or processes: warm / starting / idle / failed" }),
      el("th", { "class": "n", text: "cpu / mem" }),
      el("th")
    ]);
    c.noReplicas = el("div", { "class": "none", text: "no replicas" });
    c.errBody = el("tbody");
    c.errTable = el("table", null, [el("thead", null, [el("tr", null, [
      el("th", { text: "code" }), el("th", { "class": "n", text: "last 2 min" }), el("th", { "class": "n", text: "total" })
    ])]), c.errBody]);
    c.noErrors = el("div", { "class": "none", text: "no errors" });
    c.input = el("input", { type: "number", min: "0", max: "1000", step: "1", "data-input": "replicas", "aria-label": "replicas for " + name });
    c.input.addEventListener("input", function () { c.input.dataset.dirty = "1"; });
    c.scaleBtn = el("button", { type: "button", "class": "primary", "data-action": "scale", text: "Scale" });
    c.scaleBtn.addEventListener("click", function () { scale(c); });
    c.input.addEventListener("keydown", function (e) { if (e.key === "Enter") scale(c); });
    c.startBtn = el("button", { type: "button", "data-action": "workers-start", text: "Start workers" });
    c.stopBtn = el("button", { type: "button", "data-action": "workers-stop", text: "Stop workers" });
    c.startBtn.addEventListener("click", function () { workers(c, "start"); });
    c.stopBtn.addEventListener("click", function () { workers(c, "stop"); });

    c.root = el("section", { "class": "card", "data-service": name }, [
      el("div", { "class": "head" }, [c.title, c.status]),
      c.reason,
      c.facts,
      statsBox,
      el("div", { "class": "charts" }, c.charts.map(function (ch) { return ch.fig; })),
      el("h3", { text: "replicas" }),
      c.replicaTable = el("table", { "class": "replicas" }, [el("thead", null, [head]), c.tbody]),
      c.noReplicas,
      el("h3", { text: "errors by code" }),
      c.errTable,
      c.noErrors,
      el("div", { "class": "controls" }, [el("label", { text: "replicas" }), c.input, c.scaleBtn, c.startBtn, c.stopBtn])
    ]);
    return c;
  }

  function reported(replicas, key) {
    return replicas.length === 0 || replicas.some(function (r) { return num(r[key]) !== null; });
  }

  function fact(label, value) {
    return el("span", null, [document.createTextNode(label + " "), el("b", { text: value })]);
  }

  function updateCard(c, s, now) {
    var cfg = obj(s.config), dep = obj(cfg.deployment), perf = obj(cfg.performance), policy = obj(s.policy);
    var stats = obj(s.stats), lat = obj(stats.latency_ms);
    var replicas = arr(s.replicas).filter(function (r) { return r && typeof r === "object"; });
    var status = typeof s.status === "string" ? s.status : "";
    setBadge(c.status, status || DASH, toneOf(status));
    setText(c.reason, typeof s.reason === "string" ? s.reason : "");

    var running = replicas.filter(function (r) { return r.state === "running"; }).length;
    var desired = num(dep.replicas);
    var timeout = num(perf.timeout);
    var facts = [
      fact("strategy", dep.threading_strategy === undefined && dep.thread_count === undefined ? DASH
        : text(dep.threading_strategy) + " \u00d7 " + text(dep.thread_count)),
      fact("replicas", running + " running / " + (desired === null ? DASH : desired) + " wanted"),
      fact("balancing", text(policy.load_balancing !== undefined ? policy.load_balancing : dep.load_balancing)),
      fact("failover", text(policy.failover_enabled !== undefined ? policy.failover_enabled : dep.failover_enabled)),
      fact("queue size", text(perf.queue_size)),
      fact("timeout", timeout === null ? DASH : timeout + " s"),
      fact("active workers", fmtInt(stats.active_workers)),
      // Sums over the replicas; "–" until some replica has reported its process figures.
      fact("cpu", num(stats.cpu_percent) === null || !reported(replicas, "cpu_percent") ? DASH : fmtRate(stats.cpu_percent) + " %"),
      fact("memory", num(stats.memory_mb) === null || !reported(replicas, "memory_mb") ? DASH : fmtInt(stats.memory_mb) + " MB")
    ];
    var sig = facts.map(function (f) { return f.textContent; }).join("|");
    if (c.factsSig !== sig) {
      c.factsSig = sig;
      c.facts.replaceChildren.apply(c.facts, facts);
    }

    // Figures.
    setText(c.stats.requests.v, fmtInt(stats.requests));
    setText(c.stats.errors.v, fmtInt(stats.errors));
    setText(c.stats.rps.v, fmtRate(stats.rps));
    setText(c.stats.inflight.v, fmtInt(stats.in_flight));
    setText(c.stats.p50.v, fmtMs(lat.p50));
    setText(c.stats.p95.v, fmtMs(lat.p95));
    setText(c.stats.p99.v, fmtMs(lat.p99));
    setText(c.stats.queue.v, fmtInt(stats.queue_depth));

    // Samples: one per poll, keyed by the server's clock, the last WINDOW_MS kept.
    var last = c.samples[c.samples.length - 1];
    if (!last || now > last.t) {
      c.samples.push({
        t: now, rps: num(stats.rps), p50: num(lat.p50), p95: num(lat.p95), p99: num(lat.p99),
        queue: num(stats.queue_depth), inflight: num(stats.in_flight), byCode: obj(stats.errors_by_code)
      });
    } else if (now < last.t) {
      c.samples = [];  // the server's clock went back (a restart): start over
      return updateCard(c, s, now);
    }
    while (c.samples.length > MAX_SAMPLES || (c.samples.length > 1 && c.samples[0].t < now - WINDOW_MS)) c.samples.shift();
    for (var i = 0; i < c.charts.length; i++) drawChart(c.charts[i], c.samples, now);

    // Replicas (rows kept, so a button being clicked is not replaced under the pointer).
    var seen = new Set();
    replicas.forEach(function (r, idx) {
      var id = typeof r.replica_id === "string" ? r.replica_id : "#" + idx;
      seen.add(id);
      var row = c.rows.get(id);
      if (!row) { row = makeRow(c, id); c.rows.set(id, row); }
      if (c.tbody.children[idx] !== row.tr) c.tbody.insertBefore(row.tr, c.tbody.children[idx] || null);
      updateRow(row, r);
    });
    c.rows.forEach(function (row, id) {
      if (!seen.has(id)) { row.tr.remove(); c.rows.delete(id); }
    });
    c.noReplicas.hidden = replicas.length > 0;
    c.replicaTable.hidden = replicas.length === 0;

    // Errors by code: totals, and how many in the sampled window (oldest sample to now).
    var byCode = obj(stats.errors_by_code);
    var first = obj(c.samples[0] && c.samples[0].byCode);
    var codes = Object.keys(byCode).filter(function (k) { return num(byCode[k]) !== null && byCode[k] > 0; });
    codes.sort(function (a, b) { return byCode[b] - byCode[a] || (a < b ? -1 : 1); });
    var errSig = codes.map(function (k) { return k + "=" + byCode[k] + "/" + (num(first[k]) || 0); }).join(",");
    if (c.errSig !== errSig) {
      c.errSig = errSig;
      c.errBody.replaceChildren.apply(c.errBody, codes.map(function (k) {
        var recent = c.samples.length > 1 ? Math.max(0, byCode[k] - (num(first[k]) || 0)) : null;
        return el("tr", { "data-error-code": k }, [
          el("td", { "class": "id", text: k }),
          el("td", { "class": "n", text: recent === null ? DASH : fmtInt(recent) }),
          el("td", { "class": "n", text: fmtInt(byCode[k]) })
        ]);
      }));
    }
    c.errTable.hidden = codes.length === 0;
    c.noErrors.hidden = codes.length > 0;

    // The scale field follows the wanted count until someone edits it.
    if (!c.input.dataset.dirty && document.activeElement !== c.input) {
      var want = desired !== null ? desired : replicas.length;
      if (c.input.value !== String(want)) c.input.value = String(want);
    }
  }

  function makeRow(c, id) {
    var row = { id: id, cells: {} };
    ["id", "state", "pid", "health", "inflight", "workers", "res", "act"].forEach(function (k) {
      row.cells[k] = el("td", { "class": k === "pid" || k === "inflight" || k === "workers" || k === "res" ? "n " + k : k });
    });
    row.cells.id.textContent = id;
    row.cells.id.title = id;
    row.state = el("span", { "class": "badge" });
    row.health = el("span", { "class": "badge" });
    row.restarts = el("span", { "class": "restarts" });
    row.cells.state.appendChild(row.state);
    row.cells.state.appendChild(row.restarts);
    row.cells.health.appendChild(row.health);
    row.w = {};
    ["warm", "starting", "idle", "failed"].forEach(function (k, i) {
      if (i > 0) row.cells.workers.appendChild(el("span", { "class": "sep", text: "/" }));
      row.w[k] = el("span", { "class": "w " + k, title: k });
      row.cells.workers.appendChild(row.w[k]);
    });
    row.drain = el("button", { type: "button", "data-action": "drain", text: "Drain" });
    row.drain.addEventListener("click", function () { drain(row); });
    row.cells.act.appendChild(row.drain);
    row.tr = el("tr", { "data-replica": id }, ["id", "state", "pid", "health", "inflight", "workers", "res", "act"].map(function (k) { return row.cells[k]; }));
    return row;
  }

  function updateRow(row, r) {
    var state = typeof r.state === "string" ? r.state : "";
    var health = typeof r.health === "string" ? r.health : "";
    setBadge(row.state, state || DASH, toneOf(state));
    setBadge(row.health, health || DASH, toneOf(health));
    setText(row.cells.pid, text(r.pid));
    setText(row.cells.inflight, fmtInt(r.in_flight));
    var w = obj(r.workers);
    var noWorkers = r.workers === null || r.workers === undefined;
    if (row.cells.workers.classList.contains("nodata") !== noWorkers) row.cells.workers.classList.toggle("nodata", noWorkers);
    ["warm", "starting", "idle", "failed"].forEach(function (k) {
      setText(row.w[k], fmtInt(w[k]));
      var cls = "w " + k + (num(w[k]) ? " nz" : "");
      if (row.w[k].className !== cls) row.w[k].className = cls;
    });
    var restarts = num(r.restarts) || 0;
    setText(row.restarts, restarts > 0 ? "\u21bb" + restarts : "");
    row.cells.state.title = restarts > 0 ? restarts + " restart" + (restarts === 1 ? "" : "s") +
      (typeof r.last_exit === "string" ? "; last exit: " + r.last_exit : "") : "";
    var cpu = num(r.cpu_percent), mem = num(r.memory_mb);
    setText(row.cells.res, (cpu === null ? DASH : fmtRate(cpu) + "%") + " / " + (mem === null ? DASH : fmtInt(mem) + " MB"));
    row.tr.dataset.state = state;
    row.tr.dataset.health = health;
    // A draining replica gets its way back in: the same button undrains it.
    var draining = health === "draining";
    if (!row.busy) {
      row.undrain = draining;
      setText(row.drain, draining ? "Undrain" : "Drain");
      row.drain.setAttribute("data-action", draining ? "undrain" : "drain");
      row.drain.title = draining ? "put " + row.id + " back into rotation"
        : "take " + row.id + " out of rotation: no new requests, it finishes what it has and keeps running";
      row.drain.disabled = state === "stopped";
    }
  }

  // ---- charts --------------------------------------------------------------------------------
  function drawChart(ch, samples, now) {
    var canvas = ch.canvas;
    var n = samples.length;
    var lastSample = samples[n - 1];
    canvas.setAttribute("data-points", String(n));
    var lastVal = lastSample ? lastSample[ch.series[0].key] : null;
    canvas.setAttribute("data-last", lastVal === null || lastVal === undefined ? "" : String(lastVal));
    ch.series.forEach(function (s, i) {
      setText(ch.items[i], s.label + " " + s.fmt(lastSample ? lastSample[s.key] : null));
    });

    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || 300, h = canvas.clientHeight || 88;
    var pw = Math.round(w * dpr), ph = Math.round(h * dpr);
    if (canvas.width !== pw) canvas.width = pw;
    if (canvas.height !== ph) canvas.height = ph;
    var ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);

    var padL = 36, padR = 6, padT = 6, padB = 16;
    var iw = Math.max(10, w - padL - padR), ih = Math.max(10, h - padT - padB);
    var max = 0;
    samples.forEach(function (p) {
      ch.series.forEach(function (s) { var v = p[s.key]; if (v !== null && v > max) max = v; });
    });
    var top = niceCeil(max * 1.05);
    var t0 = now - WINDOW_MS;
    function X(t) { return padL + ((t - t0) / WINDOW_MS) * iw; }
    function Y(v) { return padT + ih - (v / top) * ih; }

    ctx.font = "10px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#eceef2";
    ctx.fillStyle = "#8a94a6";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    [0, 0.5, 1].forEach(function (f) {
      var y = Math.round(Y(top * f)) + 0.5;
      ctx.beginPath(); ctx.moveTo(padL, y); ctx.lineTo(padL + iw, y); ctx.stroke();
      ctx.fillText(fmtAxis(top * f), padL - 5, y);
    });
    ctx.textBaseline = "alphabetic";
    [[0, "-2m"], [60000, "-1m"], [WINDOW_MS, "now"]].forEach(function (m) {
      var x = X(t0 + m[0]);
      ctx.textAlign = m[0] === 0 ? "left" : m[0] === WINDOW_MS ? "right" : "center";
      ctx.fillText(m[1], x, h - 3);
    });

    ctx.save();
    ctx.beginPath(); ctx.rect(padL, 0, iw + 1, padT + ih + 1); ctx.clip();
    ctx.lineJoin = "round";
    ctx.lineCap = "round";
    ch.series.forEach(function (s) {
      // Runs of consecutive known values; a missing value breaks the line.
      var runs = [], run = [];
      samples.forEach(function (p) {
        var v = p[s.key];
        if (v === null || v === undefined) { if (run.length) runs.push(run); run = []; }
        else run.push([X(p.t), Y(v)]);
      });
      if (run.length) runs.push(run);
      runs.forEach(function (pts) {
        if (s.fill && pts.length > 1) {
          ctx.beginPath();
          ctx.moveTo(pts[0][0], Y(0));
          pts.forEach(function (p) { ctx.lineTo(p[0], p[1]); });
          ctx.lineTo(pts[pts.length - 1][0], Y(0));
          ctx.closePath();
          ctx.globalAlpha = 0.12;
          ctx.fillStyle = s.color;
          ctx.fill();
          ctx.globalAlpha = 1;
        }
        ctx.beginPath();
        pts.forEach(function (p, i) { if (i === 0) ctx.moveTo(p[0], p[1]); else ctx.lineTo(p[0], p[1]); });
        ctx.strokeStyle = s.color;
        ctx.lineWidth = 1.6;
        if (pts.length === 1) { ctx.arc(pts[0][0], pts[0][1], 1.5, 0, Math.PI * 2); ctx.fillStyle = s.color; ctx.fill(); }
        else ctx.stroke();
      });
    });
    ctx.restore();
  }

  // ---- actions -------------------------------------------------------------------------------
  function scale(c) {
    if (c.busy) return;
    var raw = c.input.value.trim();
    var n = Number(raw);
    if (raw === "" || !Number.isInteger(n) || n < 0 || n > 1000) {
      setStatus("scale " + c.name + ": replicas must be a whole number from 0 to 1000", "error");
      statusFromPoll = false;
      return;
    }
    c.busy = true;
    c.scaleBtn.disabled = true;
    statusFromPoll = false;
    setStatus("scaling " + c.name + " to " + n + " replica" + (n === 1 ? "" : "s") + "\u2026", "info");
    api("POST", "/api/scale", { service: c.name, replicas: n }).then(function (data) {
      var d = obj(data);
      if (d.success === false || typeof d.error === "string") throw new Error(errorText(200, d));
      delete c.input.dataset.dirty;
      setStatus("scaled " + c.name + " to " + n + " replica" + (n === 1 ? "" : "s"), "ok");
    }).catch(function (err) {
      setStatus("scale " + c.name + ": " + err.message, "error");
    }).finally(function () {
      statusFromPoll = false;
      c.busy = false;
      c.scaleBtn.disabled = false;
    });
  }

  // Starts or stops the workers of every capability of the service on every replica (seed scenario 4).
  function workers(c, action) {
    if (c.busy) return;
    c.busy = true;
    c.startBtn.disabled = c.stopBtn.disabled = true;
    statusFromPoll = false;
    setStatus((action === "start" ? "starting" : "stopping") + " the workers of " + c.name + "\u2026", "info");
    api("POST", "/api/services/" + encodeURIComponent(c.name) + "/workers", { action: action }).then(function (data) {
      var d = obj(data);
      if (d.success === false || typeof d.error === "string") throw new Error(errorText(200, d));
      setStatus(c.name + ": workers " + (action === "start" ? "started" : "stopped"), "ok");
    }).catch(function (err) {
      setStatus(action + " workers of " + c.name + ": " + err.message, "error");
    }).finally(function () {
      statusFromPoll = false;
      c.busy = false;
      c.startBtn.disabled = c.stopBtn.disabled = false;
    });
  }

  function drain(row) {
    if (row.busy) return;
    var action = row.undrain ? "undrain" : "drain";
    row.busy = true;
    row.drain.disabled = true;
    statusFromPoll = false;
    setStatus((action === "drain" ? "draining " : "undraining ") + row.id + "\u2026", "info");
    api("POST", "/api/replicas/" + encodeURIComponent(row.id) + "/" + action).then(function (data) {
      var d = obj(data);
      if (d.success === false || typeof d.error === "string") throw new Error(errorText(200, d));
      setStatus(action === "drain" ? row.id + " is draining: no new requests go to it" : row.id + " is back in rotation", "ok");
    }).catch(function (err) {
      setStatus(action + " " + row.id + ": " + err.message, "error");
    }).finally(function () {
      statusFromPoll = false;
      row.busy = false;
      row.drain.disabled = false;
    });
  }

  window.addEventListener("resize", function () {
    cards.forEach(function (c) {
      var now = c.samples.length ? c.samples[c.samples.length - 1].t : Date.now();
      c.charts.forEach(function (ch) { drawChart(ch, c.samples, now); });
    });
  });

  poll();
})();
`;
