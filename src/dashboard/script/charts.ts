/** Dashboard script, part: the hand-drawn canvas charts. */
// biome-ignore lint/complexity/noUselessStringRaw: every part of the script is String.raw, so a backslash added later stays literal
export const SCRIPT_CHARTS = String.raw`
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

`;
