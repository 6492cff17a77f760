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

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-countdown")) - now) / 1000;
      el.textContent = left > 0 ? duration(left) : "closed";
    });
    document.querySelectorAll("[data-age]").forEach(function (el) {
      var age = (now - Date.parse(el.getAttribute("data-age"))) / 1000;
      el.textContent = duration(age) + " ago";
    });
  }

  function setLive(state, text) {
    var el = document.getElementById("live-status");
    if (!el) { return; }
    el.setAttribute("data-state", state);
    el.textContent = text;
  }

  var lostAt = null;
  document.addEventListener("htmx:sseOpen", function () {
    var wasLost = lostAt !== null;
    lostAt = null;
    setLive("live", "Live updates: connected");
    // Back from a lost stream: fetch every live part again for what was missed.
    if (wasLost) { document.body.dispatchEvent(new Event("wattx:resync")); }
  });
  document.addEventListener("htmx:sseError", function () {
    if (lostAt === null) { lostAt = Date.now(); }
    setLive("stale", "Live updates lost: figures may be stale, reconnecting…");
  });

  var COLOURS = ["#0b5cad", "#1b6e2a", "#a4161a", "#7a4fb0"];

  // data-chart: {x: [unix seconds], unit, divisor, series: [{label, values: [integers]}]}.
  // The integers are divided only to draw; the page's table has the exact figures.
  function drawCharts() {
    if (typeof window.uPlot !== "function") { return; }
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.getAttribute("data-drawn")) { return; }
      var data = JSON.parse(el.getAttribute("data-chart"));
      var series = [{}];
      var rows = [data.x];
      data.series.forEach(function (s, i) {
        series.push({ label: s.label, stroke: COLOURS[i % COLOURS.length] });
        rows.push(s.values.map(function (v) { return v === null ? null : v / data.divisor; }));
      });
      var opts = {
        width: Math.min(el.clientWidth || 640, 900),
        height: 260,
        series: series,
        axes: [{}, { label: data.unit }]
      };
      new window.uPlot(opts, rows, el);
      el.setAttribute("data-drawn", "1");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    drawCharts();
  });
  document.addEventListener("htmx:afterSwap", function () { tick(); drawCharts(); });
})();
