"""Content-hashed static URLs with long-lived immutable caching (issue 14).

`url_for("static", filename="app.css")` gives `/static/app.css?v=<hash of the file's bytes>`; a
response to a URL whose hash matches the file on disk may be kept by any cache for a year
(`immutable`: not even re-validated on reload). A new deployment changes the hash, so the page
asks for a new URL. A URL with an old or no hash is answered with the current file and `no-cache`,
so a stale hash can never pin a wrong file in a cache. The service worker gets the same URLs
(diary/patient/pwa.py).
"""

from __future__ import annotations

import hashlib
import os
import threading

from flask import Flask, current_app, request

IMMUTABLE = "public, max-age=31536000, immutable"
_lock = threading.Lock()
# (path, size, mtime) -> hash: a file edited under `bin/dev` gets a new hash at once.
_hashes: dict[tuple[str, int, int], str] = {}


def content_hash(filename: str, app: Flask | None = None) -> str | None:
    app = app or current_app
    path = os.path.join(app.static_folder, filename)
    try:
        stat = os.stat(path)
    except OSError:
        return None
    key = (path, stat.st_size, stat.st_mtime_ns)
    digest = _hashes.get(key)
    if digest is None:
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:12]
        with _lock:
            _hashes[key] = digest
    return digest


def versioned(filename: str, app: Flask | None = None) -> str:
    """The URL path of a static file with its content hash (also outside a request)."""
    digest = content_hash(filename, app)
    return f"/static/{filename}" + (f"?v={digest}" if digest else "")


def _add_hash(endpoint: str, values: dict) -> None:
    if endpoint == "static" and "v" not in values and values.get("filename"):
        digest = content_hash(values["filename"])
        if digest:
            values["v"] = digest


def _cache_headers(response):
    if request.endpoint != "static" or response.status_code not in (200, 304):
        return response
    wanted = request.args.get("v")
    filename = (request.view_args or {}).get("filename", "")
    if wanted and wanted == content_hash(filename):
        response.headers["Cache-Control"] = IMMUTABLE
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


def init_app(app: Flask) -> None:
    app.url_defaults(_add_hash)
    app.after_request(_cache_headers)
