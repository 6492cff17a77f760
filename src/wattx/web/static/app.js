// The dashboard's own script: countdowns, ages, the live-stream status and charts.
// No inline script anywhere: this file and the npm assets are all the page runs.
(function () {
  "use strict";

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + " h " : "") + pad(m) + " min " + pad(s % 60) + " s";
  }

  // Honest freshness. The server's stream sends a `ping` event (with its clock)
  // at least every 2 s; any message proves the stream alive. A live part's figures
  // are current as of the later of its fetch (`data-age`, server time) and the last
  // message heard since, so while the stream is alive their age stays small, and
  // once it is lost the age grows. With nothing heard for STALE_MS the page says it
  // is stale, drops the connection (a silently hung one never reports an error)
  // and connects again; once back, every live part is fetched again (`wattx:resync`).
  var STALE_MS = 4000;
  var RETRY_MS = 6000;
  var source = null;
  var heardAt = Date.now();      // client time of the last message
  var serverAt = null;           // server time (ms) of the last ping
  var offsetMs = 0;              // server clock minus client clock, from the pings
  var stale = false;
  var droppedAt = 0;

  function serverNow() { return Date.now() + offsetMs; }

  function heard() {
    heardAt = Date.now();
    if (stale && source && source.readyState === 1) { back(); }
  }

  function onPing(event) {
    try {
      var at = Date.parse(JSON.parse(event.data).at);
      if (!isNaN(at)) { offsetMs = at - Date.now(); serverAt = at; }
    } catch (e) { /* a malformed ping still proves the stream alive */ }
    heard();
  }

  // Every EventSource the sse extension opens (the first and each reconnection)
  // comes through here, so the watchdog always watches the current one.
  function watchSources() {
    if (!window.htmx || typeof window.htmx.createEventSource !== "function") { return; }
    var create = window.htmx.createEventSource;
    window.htmx.createEventSource = function (url) {
      var s = create(url);
      s.addEventListener("ping", onPing);
      s.addEventListener("message", heard);
      source = s;
      return s;
    };
  }
  watchSources();

  function back() {
    stale = false;
    heardAt = Date.now();
    setLive("live", "Live updates: connected");
    // Back from a lost stream: fetch every live part again for what was missed.
    document.body.dispatchEvent(new Event("wattx:resync"));
  }

  function markStale() {
    if (!stale) {
      stale = true;
      setLive("stale", "Live updates lost: figures may be stale, reconnecting…");
    }
  }

  function drop() {
    // Close the hung connection and let the extension open a new one (its error
    // handler reconnects a closed source).
    droppedAt = Date.now();
    var s = source;
    if (!s) { return; }
    s.close();
    if (typeof s.onerror === "function") { s.onerror(new Event("error")); }
  }

  function watchdog() {
    if (!document.body.hasAttribute("data-live")) { return; }
    var now = Date.now();
    if (now - heardAt > STALE_MS) {
      markStale();
      if (now - droppedAt > RETRY_MS) { drop(); }
    }
  }

  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-countdown")) - serverNow()) / 1000;
      el.textContent = left > 0 ? duration(left) : "closed";
    });
    document.querySelectorAll("[data-age]").forEach(function (el) {
      var fetched = Date.parse(el.getAttribute("data-age"));
      // Inside a live part, the last message heard confirms the figures.
      var live = el.closest("[data-live-part]") !== null;
      var confirmed = live && !stale && serverAt !== null
        ? Math.max(fetched, heardAt + offsetMs)
        : fetched;
      var age = (serverNow() - confirmed) / 1000;
      el.textContent = duration(age) + " old" + (live && stale ? ", stale" : "");
    });
  }

  function setLive(state, text) {
    var el = document.getElementById("live-status");
    if (!el) { return; }
    el.setAttribute("data-state", state);
    el.textContent = text;
  }

  document.addEventListener("htmx:sseOpen", function (evt) {
    if (evt.detail && evt.detail.source) { source = evt.detail.source; }
    var wasStale = stale;
    heardAt = Date.now();
    if (wasStale) { back(); } else { setLive("live", "Live updates: connected"); }
  });
  document.addEventListener("htmx:sseMessage", heard);
  document.addEventListener("htmx:sseError", function () { markStale(); });

  var COLOURS = ["#0b5cad", "#1b6e2a", "#a4161a", "#7a4fb0"];

  // data-chart: {x: [unix seconds], unit, divisor, series: [{label, values: [integers]}]};
  // with x_divisor (and x_unit) x is a number, not a time (the depth chart's prices),
  // and with stepped the lines are drawn as steps.
  // The integers are divided only to draw; the page's table has the exact figures.
  function drawCharts() {
    if (typeof window.uPlot !== "function") { return; }
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.getAttribute("data-drawn")) { return; }
      var data = JSON.parse(el.getAttribute("data-chart"));
      var numeric = typeof data.x_divisor === "number";
      var series = [numeric ? { label: data.x_unit } : {}];
      var rows = [numeric ? data.x.map(function (v) { return v / data.x_divisor; }) : data.x];
      var stepped = data.stepped && window.uPlot.paths && window.uPlot.paths.stepped;
      data.series.forEach(function (s, i) {
        var line = { label: s.label, stroke: COLOURS[i % COLOURS.length] };
        if (stepped) { line.paths = window.uPlot.paths.stepped({ align: i === 0 ? -1 : 1 }); }
        series.push(line);
        rows.push(s.values.map(function (v) { return v === null ? null : v / data.divisor; }));
      });
      var opts = {
        width: Math.min(el.clientWidth || 640, 900),
        height: 260,
        series: series,
        axes: [numeric ? { label: data.x_unit } : {}, { label: data.unit }]
      };
      if (numeric) {
        opts.scales = { x: { time: false }, y: { range: function (u, min, max) { return [0, max]; } } };
      }
      new window.uPlot(opts, rows, el);
      el.setAttribute("data-drawn", "1");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("[sse-connect]")) { document.body.setAttribute("data-live", ""); }
    // The server's clock when it rendered the page (a demo's clock runs ahead of
    // the wall clock): countdowns and ages count on it; the pings keep it right.
    var rendered = Date.parse(document.body.getAttribute("data-now") || "");
    if (!isNaN(rendered)) { offsetMs = rendered - Date.now(); }
    tick();
    setInterval(tick, 1000);
    setInterval(watchdog, 500);
    drawCharts();
  });
  document.addEventListener("htmx:afterSwap", function () { tick(); drawCharts(); });
})();
