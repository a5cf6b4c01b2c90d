/** Dashboard script, part: a service card: its figures, facts, replica rows and error table. */
export const SCRIPT_CARDS = String.raw`
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
    // Autoscaled services only: what the autoscaler sees and its last decisions (docs/autoscaling.md).
    c.scaling = el("div", { "class": "autoscaling", "data-autoscaling": "" });
    c.scalingNow = el("div", { "class": "facts", "data-autoscaling-now": "" });
    c.decisions = el("ol", { "class": "decisions", "data-decisions": "" });
    c.scaling.appendChild(el("h3", { text: "autoscaling" }));
    c.scaling.appendChild(c.scalingNow);
    c.scaling.appendChild(c.decisions);
    c.scaling.hidden = true;
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
      c.scaling,
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

    var scaling = s.autoscaling && typeof s.autoscaling === "object" ? s.autoscaling : null;
    var running = scaling && num(scaling.running) !== null ? scaling.running
      : replicas.filter(function (r) { return r.state === "running"; }).length;
    // An autoscaled service's wanted count is its autoscaler's, not the config's replicas.
    var desired = scaling ? num(scaling.desired) : num(dep.replicas);
    var timeout = num(perf.timeout);
    var facts = [
      fact("strategy", dep.threading_strategy === undefined && dep.thread_count === undefined ? DASH
        : text(dep.threading_strategy) + " \u00d7 " + text(dep.thread_count)),
      fact("replicas", running + " running / " + (desired === null ? DASH : desired) + " wanted"),
      scaling ? fact("autoscaling", text(scaling.min_replicas) + "\u2013" + text(scaling.max_replicas)
        + ", target " + text(scaling.target_ongoing_requests) + " per replica") : null,
      fact("balancing", text(policy.load_balancing !== undefined ? policy.load_balancing : dep.load_balancing)),
      fact("failover", text(policy.failover_enabled !== undefined ? policy.failover_enabled : dep.failover_enabled)),
      fact("queue size", text(perf.queue_size)),
      fact("timeout", timeout === null ? DASH : timeout + " s"),
      fact("active workers", fmtInt(stats.active_workers)),
      // Sums over the replicas; "–" until some replica has reported its process figures.
      fact("cpu", num(stats.cpu_percent) === null || !reported(replicas, "cpu_percent") ? DASH : fmtRate(stats.cpu_percent) + " %"),
      fact("memory", num(stats.memory_mb) === null || !reported(replicas, "memory_mb") ? DASH : fmtInt(stats.memory_mb) + " MB")
    ];
    facts = facts.filter(Boolean);
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

    updateScaling(c, scaling);

    // The scale field follows the wanted count until someone edits it.
    if (!c.input.dataset.dirty && document.activeElement !== c.input) {
      var want = desired !== null ? desired : replicas.length;
      if (c.input.value !== String(want)) c.input.value = String(want);
    }
  }

  /** The autoscaling box: the load against the target, what holds the count, the last decisions (newest first). */
  function updateScaling(c, a) {
    c.scaling.hidden = a === null;
    // The autoscaler owns the count: /api/scale refuses an autoscaled service.
    c.input.disabled = a !== null;
    c.scaleBtn.disabled = a !== null;
    c.scaleBtn.title = a === null ? "" : "autoscaled: change autoscaling.min_replicas / max_replicas with anyserve apply";
    if (a === null) return;
    var now = [
      fact("load", num(a.ongoing) === null ? DASH : fmtRate(a.ongoing) + " ongoing"),
      fact("wants", num(a.wanted) === null ? DASH : String(a.wanted))
    ];
    if (typeof a.limited_by === "string") now.push(fact("limited by", a.limited_by));
    if (typeof a.pending === "string") now.push(fact("pending", a.pending));
    var cold = obj(a.cold_starts);
    if (num(cold.count) !== null && cold.count > 0) {
      now.push(fact("cold starts", fmtInt(cold.count) + (num(cold.mean_seconds) === null ? "" : ", mean " + fmtMs(cold.mean_seconds * 1000))));
    }
    var nowSig = now.map(function (f) { return f.textContent; }).join("|");
    if (c.scalingSig !== nowSig) {
      c.scalingSig = nowSig;
      c.scalingNow.replaceChildren.apply(c.scalingNow, now);
    }
    var decisions = arr(a.decisions).filter(function (d) { return d && typeof d === "object"; }).slice(-5).reverse();
    var decSig = decisions.map(function (d) { return d.at + ":" + d.to; }).join(",");
    if (c.decisionsSig === decSig) return;
    c.decisionsSig = decSig;
    c.decisions.replaceChildren.apply(c.decisions, decisions.length === 0
      ? [el("li", { "class": "none", text: "no decision yet" })]
      : decisions.map(function (d) {
        var at = num(d.at) === null ? DASH : new Date(d.at).toLocaleTimeString("en-GB");
        return el("li", { "data-decision": text(d.reason), title: text(d.detail) }, [
          el("span", { "class": "at", text: at }),
          el("b", { text: text(d.from) + " \u2192 " + text(d.to) }),
          el("span", { "class": "badge", text: text(d.reason) }),
          el("span", { "class": "detail", text: text(d.detail) })
        ]);
      }));
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

`;
