// frontdesk console: live updates over server-sent events. No framework, no build step.
// Every page works without this script; with it, the part of a page marked #live reloads
// itself when the server says it changed.
(function () {
  "use strict";

  var refreshing = false;
  var again = false;

  function editing(root) {
    var active = document.activeElement;
    if (active && root.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      return true;
    }
    var fields = root.querySelectorAll("input:not([type=hidden]), textarea");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value) { return true; }
    }
    return false;
  }

  // Fetch this page again and swap in its #live part (unless someone is typing in it).
  function refresh() {
    var live = document.getElementById("live");
    if (!live) { return; }
    if (refreshing) { again = true; return; }
    if (editing(live)) { setTimeout(refresh, 1000); return; }
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (fresh) {
          live.innerHTML = fresh.innerHTML;
          live.setAttribute("data-status", fresh.getAttribute("data-status") || "");
          live.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* the next change notice tries again */ })
      .finally(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  var pending = null;
  function soon() {
    if (pending) { return; }
    pending = setTimeout(function () { pending = null; refresh(); }, 150);
  }

  function watchList(live) {
    var source = new EventSource(live.getAttribute("data-live"));
    source.addEventListener("changed", soon);
  }

  // Every persisted event type (text_delta is live-only and never sent), and "status".
  var RUN_EVENTS = ["agent_start", "handoff", "tool_call", "tool_result", "message",
    "approval_required", "approval_decided", "approval_escalated", "guardrail", "done",
    "error", "budget_exceeded", "status"];

  function watchRun(live) {
    var terminal = ["completed", "failed", "cancelled", "budget_exceeded"];
    if (terminal.indexOf(live.getAttribute("data-status")) >= 0) { return; }
    var url = live.getAttribute("data-stream");
    var after = live.getAttribute("data-after");
    var source = new EventSource(after ? url + "?after=" + encodeURIComponent(after) : url);
    RUN_EVENTS.forEach(function (name) { source.addEventListener(name, soon); });
    source.addEventListener("end", function () { source.close(); soon(); });
  }

  function chatForm(form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button");
      if (button) { button.disabled = true; button.textContent = "Sending…"; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live && live.getAttribute("data-live")) { watchList(live); }
    if (live && live.getAttribute("data-stream")) { watchRun(live); }
    var forms = document.querySelectorAll("form.chat-form");
    for (var i = 0; i < forms.length; i++) { chatForm(forms[i]); }
    var log = document.getElementById("chat-log");
    if (log) { log.scrollTop = log.scrollHeight; }
    var here = window.location.pathname;
    var links = document.querySelectorAll("nav a");
    for (var j = 0; j < links.length; j++) {
      var href = links[j].getAttribute("href");
      if (href === here || (href !== "/" && here.indexOf(href) === 0) ||
          (href === "/" && here.indexOf("/runs/") === 0 && here !== "/runs/new")) {
        links[j].classList.add("active");
      }
    }
  });
})();
