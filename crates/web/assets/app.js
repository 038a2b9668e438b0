// Sidekick dashboard: live updates and form enhancement. No build step, no library.
//
// Live updates: one EventSource on /api/events. Any change re-reads the current page
// and swaps each region marked data-live whose HTML changed, so what the server
// renders stays the one source of truth. The browser resumes with Last-Event-ID on
// its own; the first connection passes the last event this HTML already shows.
(function () {
  "use strict";

  var announcer = document.getElementById("live-status");
  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function csrfHeaders(extra) {
    var headers = extra || {};
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) headers["x-csrf-token"] = meta.content;
    return headers;
  }

  // ---- re-reading the page -------------------------------------------------
  var refreshTimer = null;
  var refreshing = false;
  var again = false;

  function scheduleRefresh(delay) {
    if (refreshTimer) window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refresh, delay === undefined ? 120 : delay);
  }

  function refresh() {
    refreshTimer = null;
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        // Signed out meanwhile (session ended elsewhere): go where the server sent us.
        if (r.redirected && new URL(r.url).pathname.indexOf("/signin") === 0) {
          window.location.assign(r.url);
          throw new Error("signed out");
        }
        if (!r.ok) throw new Error("page answered " + r.status);
        return r.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        swapRegions(fresh);
      })
      .catch(function () { /* the next change or reconnect tries again */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; scheduleRefresh(0); }
      });
  }

  function swapRegions(fresh) {
    var newReplies = 0;
    document.querySelectorAll("[data-live]").forEach(function (region) {
      var next = fresh.querySelector('[data-live="' + region.dataset.live + '"]');
      if (!next || next.innerHTML === region.innerHTML) return;
      if (region.dataset.live === "conversation") {
        newReplies = next.querySelectorAll(".msg.out").length - region.querySelectorAll(".msg.out").length;
      }
      var focusedKey = focusKey(region);
      region.innerHTML = next.innerHTML;
      if (region.dataset.live !== "conversation") {
        region.classList.remove("flash");
        void region.offsetWidth;
        region.classList.add("flash");
      }
      restoreFocus(region, focusedKey);
      if (region.dataset.live === "conversation") scrollTimeline();
    });
    if (newReplies > 0) announce(newReplies === 1 ? "New reply from Sidekick." : newReplies + " new replies from Sidekick.");
  }

  function focusKey(region) {
    var el = document.activeElement;
    if (!el || !region.contains(el)) return null;
    return el.id || el.getAttribute("data-focus-key");
  }

  function restoreFocus(region, key) {
    if (!key) return;
    var el = document.getElementById(key) || region.querySelector('[data-focus-key="' + key + '"]');
    if (el) el.focus();
  }

  // Newest last: keep the conversation scrolled to its end (inside its own box,
  // so the chat box below stays where it is).
  function scrollTimeline() {
    var scroller = document.querySelector(".scroller");
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
  }

  // ---- the live stream -----------------------------------------------------
  // One stream per open page. It is closed when the page is left (browsers allow
  // only a few connections per server, and a page kept in the back/forward cache
  // must not hold one) and opened again if the page is shown again.
  var source = null;
  function connect() {
    if (source || !window.EventSource || !document.body.hasAttribute("data-live-updates")) return;
    var since = document.body.getAttribute("data-since");
    var url = "/api/events" + (since ? "?since=" + encodeURIComponent(since) : "");
    source = new EventSource(url, { withCredentials: true });
    source.addEventListener("hello", function () { document.body.setAttribute("data-connected", "true"); });
    source.addEventListener("change", function (event) {
      if (event.lastEventId) document.body.setAttribute("data-since", event.lastEventId);
      scheduleRefresh();
    });
    source.addEventListener("reset", function () { scheduleRefresh(0); });
    source.onerror = function () { document.body.setAttribute("data-connected", "false"); };
  }
  function disconnect() {
    if (source) { source.close(); source = null; }
    document.body.setAttribute("data-connected", "false");
  }
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { connect(); scheduleRefresh(0); }
  });

  // ---- actions: buttons and forms that call the JSON API ---------------------
  function call(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: csrfHeaders({ Accept: "application/json" }) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      if (r.status === 401) { window.location.assign("/signin"); throw new Error("Please sign in again."); }
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!r.ok) {
          var message = data && data.error && data.error.message ? data.error.message : "That did not go through. Try again in a moment.";
          message = message.charAt(0).toUpperCase() + message.slice(1);
          throw new Error(message);
        }
        return data;
      });
    });
  }

  function statusFor(el) {
    var scope = el.closest("form, [data-status-scope]") || document;
    return scope.querySelector("[data-form-status]") || document.getElementById("page-status");
  }

  function say(el, text) {
    var status = statusFor(el);
    if (status) status.textContent = text;
  }

  // Reordering: the moves the server worked out, one after another.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-moves]");
    if (!button) return;
    event.preventDefault();
    var moves = JSON.parse(button.getAttribute("data-moves"));
    button.disabled = true;
    moves.reduce(function (done, move) {
      return done.then(function () { return call("PATCH", "/api/tasks/" + move[0], { position: move[1] }); });
    }, Promise.resolve())
      .then(function () { say(button, "Moved."); scheduleRefresh(0); })
      .catch(function (e) { say(button, e.message); })
      .then(function () { button.disabled = false; });
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-method]");
    if (!button) return;
    event.preventDefault();
    var confirmText = button.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) return;
    var body = button.hasAttribute("data-body") ? JSON.parse(button.getAttribute("data-body")) : undefined;
    button.disabled = true;
    call(button.getAttribute("data-method"), button.getAttribute("data-url"), body)
      .then(function () {
        var done = button.getAttribute("data-done");
        if (done) say(button, done);
        var next = button.getAttribute("data-then");
        if (next) { window.location.assign(next); return; }
        scheduleRefresh(0);
      })
      .catch(function (e) { say(button, e.message); })
      .then(function () { button.disabled = false; });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-json")) return;
    event.preventDefault();
    var body = {};
    new FormData(form).forEach(function (value, key) { body[key] = typeof value === "string" ? value.trim() : value; });
    var submit = form.querySelector('button[type="submit"]');
    if (submit) submit.disabled = true;
    call(form.getAttribute("data-method") || "POST", form.getAttribute("data-json"), body)
      .then(function () {
        form.reset();
        say(form, form.getAttribute("data-done") || "Done.");
        var next = form.getAttribute("data-then");
        if (next) { window.location.assign(next); return; }
        scheduleRefresh(0);
        var first = form.querySelector("input, textarea");
        if (first) first.focus();
      })
      .catch(function (e) { say(form, e.message); })
      .then(function () { if (submit) submit.disabled = false; });
  });

  // ---- second factor setup: scan, prove with a code, keep the recovery codes ----
  var begin = document.querySelector("[data-totp-begin]");
  if (begin) {
    begin.addEventListener("click", function () {
      begin.disabled = true;
      call("POST", "/api/me/totp")
        .then(function (data) {
          document.getElementById("totp-secret").textContent = data.secret;
          document.getElementById("totp-link").href = data.otpauth_uri;
          document.getElementById("totp-setup").hidden = false;
          document.getElementById("totp-code").focus();
        })
        .catch(function (e) { say(begin, e.message); begin.disabled = false; });
    });
    document.getElementById("totp-confirm").addEventListener("submit", function (event) {
      event.preventDefault();
      var form = event.target;
      call("POST", "/api/me/totp/confirm", { code: form.code.value.trim() })
        .then(function (data) {
          var list = document.querySelector("#totp-codes .codes");
          data.recovery_codes.forEach(function (code) {
            var item = document.createElement("li");
            var text = document.createElement("code");
            text.textContent = code;
            item.appendChild(text);
            list.appendChild(item);
          });
          document.getElementById("totp-setup").hidden = true;
          begin.closest("[data-status-scope]").hidden = true;
          var codes = document.getElementById("totp-codes");
          codes.hidden = false;
          codes.focus();
        })
        .catch(function (e) { say(form, e.message); });
    });
  }

  // Enter sends in the chat box; Shift+Enter makes a new line.
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (event.key !== "Enter" || event.shiftKey || !box.matches || !box.matches("textarea[data-enter-sends]")) return;
    event.preventDefault();
    if (box.form && box.form.requestSubmit) box.form.requestSubmit();
  });

  // ---- memory: results as you type ----------------------------------------
  var search = document.querySelector("input[data-instant]");
  if (search) {
    var searchTimer = null;
    search.addEventListener("input", function () {
      if (searchTimer) window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(function () {
        var url = new URL(window.location.href);
        if (search.value.trim()) url.searchParams.set("q", search.value.trim());
        else url.searchParams.delete("q");
        window.history.replaceState(null, "", url.toString());
        refresh();
      }, 200);
    });
  }

  if (document.querySelector(".timeline")) scrollTimeline();
  connect();
})();
