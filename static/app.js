/* Participant diary, progressive enhancement on top of plain forms and htmx.
   - Registers the service worker (offline pages).
   - Check-offs and symptom reports made offline are queued in IndexedDB with the key the page
     gave the form, shown as "saved on this phone", and replayed to /sync/* when back online.
     The server treats a key it has seen as the same record, so a replay never writes twice. */
(function () {
  "use strict";
  var STORE = "outbox";
  var strings = (document.getElementById("diary-strings") || {}).dataset || {};
  var replaying = false;
  var warming = Promise.resolve();
  // Set when sign-out begins: a warm-up started after it would fetch pages with the old session,
  // and their late responses would set the old session cookie over the sign-in page's new one.
  var signingOut = false;

  // htmx swaps 4xx/5xx answers (base.html's htmx-config; diary/errors.py aims error pages at the
  // message area). A page open too long gets a CSRF refusal carrying a fresh token: put it in, so
  // the form, still as typed, works on the next tap.
  // A new tap starts afresh: the previous error message (if any) goes.
  document.addEventListener("htmx:beforeRequest", function () {
    var area = document.getElementById("request-error");
    if (area) area.textContent = "";
  });
  document.addEventListener("htmx:responseError", function (event) {
    var fresh = event.detail.xhr && event.detail.xhr.getResponseHeader("X-CSRF-Token");
    if (!fresh) return;
    document.body.setAttribute("hx-headers", JSON.stringify({ "X-CSRFToken": fresh }));
    Array.prototype.forEach.call(document.querySelectorAll("input[name=csrf_token]"), function (input) {
      input.value = fresh;
    });
  });

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (reg) {
      // Keep the pages a participant needs offline, under this session's partition.
      // Once per browsing session is enough; the worker refreshes pages as they are visited.
      if (reg.active && !signingOut && !sessionStorage.getItem("diary-warm")) {
        sessionStorage.setItem("diary-warm", "1");
        var channel = new MessageChannel();
        // Sign-out waits for this: a response arriving after it would set the old session cookie again.
        warming = new Promise(function (resolve) {
          channel.port1.onmessage = resolve;
          setTimeout(resolve, 5000);
        });
        reg.active.postMessage({ type: "warm", urls: ["/", "/symptoms"] }, [channel.port2]);
      }
    }).catch(function () {});
  }

  // --- IndexedDB queue ----------------------------------------------------------------------
  function db() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open("diary", 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE, { keyPath: "client_key" }); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  function tx(mode, fn) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var t = d.transaction(STORE, mode), result;
        t.oncomplete = function () { resolve(result); };
        t.onerror = function () { reject(t.error); };
        result = fn(t.objectStore(STORE));
      });
    });
  }
  function queued() {
    return tx("readonly", function (s) { var r = s.getAll(); return r; }).then(function (r) { return r.result || []; });
  }
  function enqueue(item) { return tx("readwrite", function (s) { s.put(item); }); }
  function forget(key) { return tx("readwrite", function (s) { s.delete(key); }); }

  // --- what the participant sees --------------------------------------------------------------
  function showStatus(count, message) {
    var el = document.getElementById("sync-status");
    if (!el) return;
    var text = message || (count === 1 ? strings.queuedOne
      : count > 1 ? (strings.queuedMany || "").replace("{n}", count) : "");
    el.textContent = text;
    el.hidden = !text;
  }
  function refreshStatus() { return queued().then(function (items) { showStatus(items.length); }); }

  function markSaved(container, form) {
    var note = document.createElement("p");
    note.className = "notice";
    note.setAttribute("role", "status");
    note.textContent = strings.queuedOne;
    Array.prototype.forEach.call(container.querySelectorAll("form, details, a[hx-get]"), function (el) {
      el.hidden = true;
    });
    form.hidden = true;
    container.appendChild(note);
  }

  // --- turning a form into a queued record ----------------------------------------------------
  function doseRecord(form) {
    var card = form.closest(".day-card");
    var action = form.getAttribute("action") || "";
    var outcome = /\/undo$/.test(action) ? "retracted" : /\/not-taken$/.test(action) ? "not_taken" : "taken";
    var f = new FormData(form);
    var body = {
      client_key: f.get("client_key"), course_id: Number(card.dataset.course || action.split("/")[2]),
      day: Number(card.dataset.day || action.split("/")[4]), outcome: outcome,
      taken_at: new Date().toISOString(), fasting: f.get("fasting") || null, reason: f.get("reason")
    };
    if (f.get("taken_time")) { body.taken_on = f.get("taken_on"); body.taken_time = f.get("taken_time"); }
    return { client_key: body.client_key, url: "/sync/dose", body: body, queued_at: body.taken_at };
  }
  function symptomRecord(form) {
    var f = new FormData(form);
    var symptoms = f.getAll("symptom").map(function (key) { return { key: key, severity: f.get("severity-" + key) }; });
    var body = { client_key: f.get("client_key"), symptoms: symptoms, note: f.get("note") || "",
      noticed_at: new Date().toISOString() };
    return { client_key: body.client_key, url: "/sync/symptoms", body: body, queued_at: body.noticed_at };
  }

  function queueForm(form) {
    var kind = form.dataset.queue;
    if (kind === "symptoms") {
      var record = symptomRecord(form);
      var danger = form.querySelector("input[data-danger]:checked");
      // The same checks the server makes: a report it would refuse is not kept on the phone. A danger
      // answer is never refused for a blank "how bad": the server records it as not stated.
      if (!record.body.symptoms.length ||
          (!danger && record.body.symptoms.some(function (s) { return !s.severity; }))) {
        showStatus(0, strings.incomplete);
        return true;
      }
      enqueue(record).then(refreshStatus);
      if (danger) {
        // Danger: the call-now instruction appears at once, whatever the network does.
        document.getElementById("symptoms-form").hidden = true;
        // Stroke, chest-pain or breathing signs: the emergency number comes first.
        var emergency = form.querySelector("input[data-emergency]:checked");
        var screen = document.getElementById(emergency ? "danger-emergency" : "danger");
        screen.hidden = false;
        screen.querySelector("h1").focus();
      } else {
        markSaved(form.parentNode, form);
      }
      return true;
    }
    if (kind === "dose" && form.closest(".day-card")) {
      // A page kept from an earlier day would file today's tap under the wrong course day.
      var now = new Date(), pad = function (n) { return (n < 10 ? "0" : "") + n; };
      var phoneToday = now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
      if (form.closest(".day-card").dataset.renderedOn !== phoneToday) {
        showStatus(0, strings.stale);
        return true;
      }
      enqueue(doseRecord(form)).then(refreshStatus);
      markSaved(form.closest(".day-card"), form);
      return true;
    }
    return false;
  }

  // Offline: keep the tap on the phone instead of letting the browser show an error page.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset || !form.dataset.queue || navigator.onLine) return;
    if (queueForm(form)) { event.preventDefault(); event.stopPropagation(); }
  }, true);
  // "Online" but the request never arrived (weak signal): queue it the same way.
  document.addEventListener("htmx:sendError", function (event) {
    var form = event.detail.elt && event.detail.elt.closest("form[data-queue]");
    if (form) queueForm(form);
  });

  // --- replay ---------------------------------------------------------------------------------
  function token() {
    return fetch("/sync/csrf", { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok || (r.headers.get("Content-Type") || "").indexOf("json") < 0) throw new Error("signed out");
        return r.json();
      }).then(function (j) { return j.csrf_token; });
  }
  function send(item, csrf) {
    return fetch(item.url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify(item.body) });
  }
  function replay() {
    if (replaying || !navigator.onLine) return Promise.resolve();
    replaying = true;
    var sent = 0, refused = false;
    return queued().then(function (items) {
      if (!items.length) return;
      return token().then(function (csrf) {
        return items.reduce(function (chain, item) {
          return chain.then(function () {
            return send(item, csrf).then(function (r) {
              if (r.ok) { sent++; return forget(item.client_key); }
              // Refused for good (too late, not this person's): keep it no longer, but say so.
              if (r.status === 422 || r.status === 404) { refused = true; return forget(item.client_key); }
            });
          });
        }, Promise.resolve());
      });
    }).catch(function () {}).then(function () {
      replaying = false;
      return queued().then(function (left) {
        showStatus(left.length, refused ? strings.refused : (sent && !left.length ? strings.sent : ""));
        var today = document.getElementById("today");
        if (sent && today && window.htmx) htmx.ajax("GET", "/", { target: "#today", swap: "outerHTML" });
      });
    });
  }

  window.addEventListener("online", replay);
  document.addEventListener("DOMContentLoaded", function () { refreshStatus().then(replay); });
  setInterval(replay, 60000);

  // Signing out: send what is waiting, warn if some cannot be sent, and drop this person's pages.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-sign-out") || form.dataset.confirmed) return;
    event.preventDefault();
    signingOut = true;
    warming.then(replay).then(queued).then(function (left) {
      if (left.length && !window.confirm(strings.unsentSignOut)) { signingOut = false; return; }
      var clear = window.caches ? caches.keys().then(function (keys) {
        return Promise.all(keys.filter(function (k) { return k.indexOf("pages-") === 0; }).map(function (k) { return caches.delete(k); }));
      }) : Promise.resolve();
      return clear.catch(function () {}).then(function () { form.dataset.confirmed = "1"; form.submit(); });
    });
  });
})();
