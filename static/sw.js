/* Service worker: the app shell from cache, pages network-first with a cached copy for offline.
   Pages are kept in a cache named after the signed-in session (the X-Diary-Cache header), and any
   other session's pages are deleted as soon as the network shows a different person, or nobody.
   Sign-out also sends Clear-Site-Data, which empties every cache. */
"use strict";
// /sw.js (diary/patient/pwa.py) is this file with every "/static/…" URL below given its content
// hash (?v=…) and SHELL renamed after those hashes: a deployment that changes a file changes this
// worker, the browser installs it, and "activate" drops the previous shell. No manual bump needed.
var SHELL = "shell-v1";
var SHELL_FILES = ["/static/app.css", "/static/app.js", "/static/vendor/htmx-2.0.11.min.js",
  "/static/icons/icon.svg", "/static/icons/icon-192.png", "/static/offline.html"];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(SHELL).then(function (c) { return c.addAll(SHELL_FILES); }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf("shell-") === 0 && k !== SHELL; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

function pageCaches() {
  return caches.keys().then(function (keys) { return keys.filter(function (k) { return k.indexOf("pages-") === 0; }); });
}

// Keep a page under its session's partition; a page without one (signed out) drops them all.
function remember(request, response) {
  var partition = response.headers.get("X-Diary-Cache");
  var mine = partition ? "pages-" + partition : null;
  return pageCaches().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== mine; }).map(function (n) { return caches.delete(n); }));
  }).then(function () {
    if (!mine || !response.ok || response.redirected) return;
    return caches.open(mine).then(function (c) { return c.put(request.url, response); });
  });
}

function fromPageCache(url) {
  return pageCaches().then(function (names) {
    // At most one partition exists: the person signed in when the phone was last online.
    return names.length ? caches.open(names[0]).then(function (c) { return c.match(url); }) : undefined;
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.indexOf("/static/") === 0) {
    // A content-hashed URL names one version of a file for ever: the cached copy is the file.
    // Without a network, an unhashed or other-version URL (offline.html's stylesheet) gets the
    // shell's copy of that file.
    event.respondWith(caches.open(SHELL).then(function (c) {
      return c.match(request).then(function (hit) {
        return hit || fetch(request).then(function (r) {
          if (r.ok && url.searchParams.has("v")) c.put(request, r.clone());
          return r;
        }).catch(function (error) {
          return c.match(request, { ignoreSearch: true }).then(function (old) { if (old) return old; throw error; });
        });
      });
    }));
    return;
  }
  if (request.mode !== "navigate") return;  // htmx fragments and /sync/* always go to the network
  event.respondWith(fetch(request).then(function (response) {
    event.waitUntil(remember(request, response.clone()));
    return response;
  }).catch(function () {
    return fromPageCache(request.url).then(function (hit) {
      return hit || caches.match("/static/offline.html");
    });
  }));
});

self.addEventListener("message", function (event) {
  if (!event.data || event.data.type !== "warm") return;
  var done = event.ports && event.ports[0];
  event.waitUntil(Promise.all(event.data.urls.map(function (path) {
    var request = new Request(path, { credentials: "same-origin" });
    return fetch(request).then(function (r) { return remember(request, r); }).catch(function () {});
  })).then(function () { if (done) done.postMessage("warm"); }));
});
