"""The installable web app: manifest and service worker (both public, no personal data)."""

from __future__ import annotations

import hashlib
import os
import re

from flask import current_app, jsonify, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from diary import static_assets
from diary.patient import bp

_STATIC_URL = re.compile(r'"/static/([^"?]+)"')
_SHELL_NAME = re.compile(r'var SHELL = "shell-[^"]*";')


def worker_source(app) -> str:
    """static/sw.js with content-hashed shell URLs, and a shell cache named after them."""
    with open(os.path.join(app.static_folder, "sw.js"), encoding="utf-8") as fh:
        source = fh.read()
    urls: list[str] = []

    def hashed(match: re.Match) -> str:
        urls.append(static_assets.versioned(match.group(1), app))
        return f'"{urls[-1]}"'

    source = _STATIC_URL.sub(hashed, source)
    version = hashlib.sha256("\n".join(urls).encode()).hexdigest()[:12]
    # Whatever name the file gives (a manual "shell-v2" bump included), the served one follows the hashes.
    return _SHELL_NAME.sub(f'var SHELL = "shell-{version}";', source, count=1)


@bp.get("/sw.js")
def service_worker():
    # Served from the root so that its scope can be the whole diary, not just /static/.
    response = current_app.response_class(worker_source(current_app), mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    # Browsers re-check the worker at most daily anyway; no-cache makes an update visible at once.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    lang = "en" if request.args.get("lang") == "en" else "zh"
    with force_locale(lang):
        name = _("Medicine diary")

    def icon(filename: str, sizes: str, kind: str, purpose: str = "any") -> dict:
        return {"src": url_for("static", filename=f"icons/{filename}"), "sizes": sizes, "type": kind,
                "purpose": purpose}

    response = jsonify({
        "name": name, "short_name": name, "lang": "zh-CN" if lang == "zh" else "en",
        "start_url": "/", "scope": "/", "display": "standalone",
        "background_color": "#ffffff", "theme_color": "#0b5cad",
        "icons": [icon("icon-192.png", "192x192", "image/png"), icon("icon-512.png", "512x512", "image/png"),
                  icon("maskable-512.png", "512x512", "image/png", "maskable"),
                  icon("icon.svg", "any", "image/svg+xml")],
    })
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response

