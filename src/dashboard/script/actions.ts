/** Dashboard script, part: the management actions (scale, workers, drain) and the program's start; closes the IIFE opened in core. */
export const SCRIPT_ACTIONS = String.raw`
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
})();`;
