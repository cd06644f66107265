// forge view: live updates (server-sent events), client-side sorting of
// tables marked .sortable, the compare page's regressions filter. No
// framework; every page works without it.
(function () {
  "use strict";

  // Sort a table by a column when its header button is pressed (numbers by
  // data-value when present, else text); pressing again reverses.
  function wireSort(root) {
    root.querySelectorAll("table.sortable thead button[data-col]").forEach(function (b) {
      b.addEventListener("click", function () {
        var table = b.closest("table");
        var col = parseInt(b.dataset.col, 10) - 1;
        var desc = b.getAttribute("aria-sort") !== "descending";
        table.querySelectorAll("thead button").forEach(function (o) { o.removeAttribute("aria-sort"); });
        b.setAttribute("aria-sort", desc ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var key = function (r) {
          var c = r.cells[col];
          if (!c) return "";
          var v = c.getAttribute("data-value");
          if (v !== null && v !== "" && !isNaN(Number(v))) return Number(v);
          return (v !== null ? v : c.textContent).trim().toLowerCase();
        };
        rows.sort(function (x, y) {
          var a = key(x), c = key(y);
          var r = a < c ? -1 : a > c ? 1 : 0;
          return desc ? -r : r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  function wireRegressions(root) {
    var box = root.querySelector("#regressions-only");
    if (!box) return;
    var apply = function () {
      root.querySelectorAll("#differing-table tbody tr").forEach(function (r) {
        r.hidden = box.checked && r.dataset.regression !== "true";
      });
    };
    box.addEventListener("change", apply);
    apply();
  }

  function wire(root) { wireSort(root); wireRegressions(root); }

  // Live: the page names its event stream in <body data-live>; on each
  // event the page's <main> is fetched again and swapped in (no reload).
  function live() {
    var url = document.body.dataset.live;
    if (!url || !window.EventSource) return;
    var badge = document.getElementById("livebadge");
    var busy = false, again = false;
    var refresh = function () {
      if (busy) { again = true; return; }
      busy = true;
      fetch(window.location.href, { headers: { "Accept": "text/html" } })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("main");
          var main = document.getElementById("main");
          if (fresh && main) { main.innerHTML = fresh.innerHTML; wire(main); }
          if (doc.body && !doc.body.dataset.live) { es.close(); if (badge) { badge.textContent = "finished"; badge.classList.add("off"); } }
        })
        .catch(function () {})
        .then(function () { busy = false; if (again) { again = false; refresh(); } });
    };
    var es = new EventSource(url);
    var first = true;
    es.addEventListener("progress", function () {
      if (first) { first = false; return; } // the page already shows the first state
      refresh();
    });
    es.onerror = function () { if (badge) { badge.textContent = "reconnecting"; badge.classList.add("off"); } };
    es.onopen = function () { if (badge) { badge.textContent = "live"; badge.classList.remove("off"); } };
  }

  document.addEventListener("DOMContentLoaded", function () { wire(document); live(); });
})();
