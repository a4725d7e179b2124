// tongban 通办: small enhancements of the server-rendered pages. Every page works without
// this script; it only saves the clerk and the reviewer a few clicks.
"use strict";

(function () {
  // 打印: buttons marked data-print (inline handlers are forbidden by the page's CSP).
  function wirePrint() {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }

  // Live filter: <input data-filter="#rows"> hides rows whose data-filter-text lacks the text.
  function wireFilter() {
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      var target = document.querySelector(input.getAttribute("data-filter"));
      if (!target) { return; }
      var empty = document.querySelector(input.getAttribute("data-filter-empty") || "#none");
      function apply() {
        var needle = input.value.trim().toLowerCase();
        var shown = 0;
        target.querySelectorAll("[data-filter-text]").forEach(function (row) {
          var hit = !needle || row.getAttribute("data-filter-text").toLowerCase().indexOf(needle) >= 0;
          row.hidden = !hit;
          if (hit) { shown += 1; }
        });
        if (empty) { empty.hidden = shown > 0; }
      }
      input.addEventListener("input", apply);
      apply();
    });
  }

  // 新建办件: show the pledge section only when 容缺 or 告知承诺 is chosen, and the file
  // input of a material only when it is handed in (提交).
  function wireMaterials() {
    var form = document.querySelector("form[data-application]");
    if (!form) { return; }
    var pledge = form.querySelector("[data-pledge]");
    var hasErrors = pledge && pledge.querySelector(".field-error");
    function apply() {
      var needPledge = false;
      form.querySelectorAll("[data-material]").forEach(function (item) {
        var chosen = item.querySelector("input[type=radio]:checked");
        var mode = chosen ? chosen.value : "provided";
        if (mode === "deferred" || mode === "pledged") { needPledge = true; }
        var files = item.querySelector("[data-files]");
        if (files) { files.hidden = mode !== "provided"; }
      });
      if (pledge) { pledge.hidden = !(needPledge || hasErrors); }
    }
    form.addEventListener("change", apply);
    apply();
  }

  // 补正 notice rows: "添加一项" clones the row template (一次性告知: every item at once).
  function wireRows() {
    document.querySelectorAll("[data-rows]").forEach(function (box) {
      var template = box.querySelector("template");
      var list = box.querySelector("[data-rows-list]");
      var add = box.querySelector("[data-rows-add]");
      if (!template || !list || !add) { return; }
      add.hidden = false;
      add.addEventListener("click", function () {
        list.appendChild(template.content.cloneNode(true));
        var inputs = list.querySelectorAll("input[type=text]");
        if (inputs.length) { inputs[inputs.length - 1].focus(); }
      });
      box.addEventListener("click", function (event) {
        var button = event.target.closest("[data-rows-remove]");
        if (button && list.children.length > 1) { button.closest("[data-row]").remove(); }
      });
    });
  }

  // The sync bar refreshes itself: <div data-refresh="/sync-bar" data-every="15">.
  function wireRefresh() {
    document.querySelectorAll("[data-refresh]").forEach(function (box) {
      var every = (parseInt(box.getAttribute("data-every"), 10) || 15) * 1000;
      function tick() {
        if (document.hidden) { return; }
        fetch(box.getAttribute("data-refresh"), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html === null) { return; }
            var holder = document.createElement("div");
            holder.innerHTML = html;
            var fresh = holder.firstElementChild;
            if (fresh) { box.replaceWith(fresh); box = fresh; }
          })
          .catch(function () { /* the station is the server: nothing to do */ });
      }
      window.setInterval(tick, every);
    });
  }

  // A page that waits for news reloads when its stamp changes:
  // <main data-watch="/cases/N/stamp" data-stamp="in_review:3">.
  function wireWatch() {
    var box = document.querySelector("[data-watch]");
    if (!box) { return; }
    var url = box.getAttribute("data-watch");
    var stamp = box.getAttribute("data-stamp");
    window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (text) {
          if (text !== null && text.trim() !== stamp) { window.location.reload(); }
        })
        .catch(function () { /* try again next time */ });
    }, 3000);
  }

  // Confirm irreversible acts: <form data-confirm="确定不予受理？">.
  function wireConfirm() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  // After a refusal, the cursor goes to the field at fault.
  function focusError() {
    var bad = document.querySelector(".has-error input, .has-error select, .has-error textarea");
    if (bad) { bad.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusError();
    wirePrint();
    wireFilter();
    wireMaterials();
    wireRows();
    wireRefresh();
    wireWatch();
    wireConfirm();
  });
})();
