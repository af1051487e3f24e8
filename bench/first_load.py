"""First-load transfer of the participant's today page, as a phone on an empty cache fetches it.

Runs the real app on 127.0.0.1 with a fresh SQLite database and one signed-in participant, opens
the today page in Debian's chromium (Pixel 7 emulation, empty cache), and records at the server
every response the browser asked for — the page, its CSS and JS, the manifest and icons it
requested, the service worker and what the worker fetched for offline use. Bodies are measured as
a compressing server (gzip -6) would send them; PNG is sent as is. Goal: at most 40 KB in total.

    .venv/bin/python bench/first_load.py [--budget-kb 40]
"""

from __future__ import annotations

import argparse
import gzip
import logging
import re
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from werkzeug.serving import make_server  # noqa: E402

from diary import create_app, db, migrate  # noqa: E402
from diary.auth.services import hash_secret  # noqa: E402
from diary.models import Site, StaffUser  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
COMPRESSIBLE = re.compile(r"text/|javascript|json|svg|xml")
PHONE, PIN = "+8613800001111", "4826"


class Recorder:
    """WSGI middleware: what the server sent, path by path."""

    def __init__(self, app):
        self.app, self.rows, self.lock = app, [], threading.Lock()

    def __call__(self, environ, start_response):
        seen = {}

        def start(status, headers, exc_info=None):
            seen["status"], seen["type"] = int(status.split()[0]), dict(headers).get("Content-Type", "")
            return start_response(status, headers, exc_info)

        body = b"".join(self.app(environ, start))
        path = environ.get("PATH_INFO", "") + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
        sent = len(gzip.compress(body, 6)) if body and COMPRESSIBLE.search(seen["type"]) else len(body)
        with self.lock:
            self.rows.append((time.monotonic(), path, seen["status"], seen["type"].split(";")[0], len(body), sent))
        return [body]


def build_app(folder: Path):
    url = f"sqlite:///{folder / 'bench.sqlite3'}"
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret", "DATA_ENCRYPTION_KEY": "bench-data",
                      "RATELIMIT_ENABLED": False, "SMS_BACKEND": "console"})
    from sqlmodel import Session

    from diary.services import enrolment

    now = datetime.now(UTC)
    with Session(app.extensions["diary.engine"]) as s:
        site = Site(code="B", name="Bench site", phone="+86-591-0000-0000")
        staff = StaffUser(email="bench@example.org", name="Bench", role="nurse", password_hash=hash_secret("x" * 12))
        s.add(site)
        s.add(staff)
        s.flush()
        participant = enrolment.enroll(s, app.extensions["diary.cipher"], site_id=site.id, study_number="BENCH-1",
                                       cohort="primary", phone=PHONE, staff_id=staff.id, now=now, language="zh")
        participant.pin_hash = hash_secret(PIN)
        today = (now + timedelta(hours=8)).date()
        enrolment.open_course(s, app.extensions["diary.study"], participant=participant,
                              adc_drug="trastuzumab_deruxtecan", infusion_date=today - timedelta(days=6),
                              staff_id=staff.id, now=now)
        s.commit()
    return app


def signed_in_cookies(app, base: str) -> list[dict]:
    """Sign in outside the browser, so the browser's first request is the today page itself."""
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)
    r = client.post("/login", data={"csrf_token": token, "phone": PHONE, "pin": PIN})
    assert r.status_code == 302, "bench sign-in failed"
    return [{"name": name, "value": client.get_cookie(name).value, "url": base}
            for name in ("session", "remember_token") if client.get_cookie(name)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-kb", type=float, default=40)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(Path(tmp))
        recorder = Recorder(app.wsgi_app)
        app.wsgi_app = recorder
        server = make_server("127.0.0.1", 0, app, threaded=True)
        base = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        cookies = signed_in_cookies(app, base)
        recorder.rows.clear()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            device = dict(pw.devices["Pixel 7"])
            device.pop("default_browser_type", None)
            context = browser.new_context(**device, locale="zh-CN")
            context.add_cookies(cookies)
            page = context.new_page()
            page.goto(base + "/", wait_until="load")
            loaded = time.monotonic()
            page.wait_for_load_state("networkidle")
            page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            time.sleep(2)  # the worker's install and offline warm-up run after the load event
            page.wait_for_load_state("networkidle")
            browser.close()
        server.shutdown()

    rows = sorted(recorder.rows)
    print(f"{'when':<6} {'status':>6} {'bytes':>8} {'gzip':>7}  {'type':<26} path")
    for at, path, status, kind, raw, sent in rows:
        print(f"{'load' if at <= loaded else 'after':<6} {status:>6} {raw:>8} {sent:>7}  {kind:<26} {path}")
    on_load = sum(sent for at, *_rest, sent in rows if at <= loaded)
    total = sum(row[-1] for row in rows)
    print(f"\nfirst load of the today page (until the load event): {on_load / 1024:.1f} KB compressed")
    print(f"including the service worker's install and offline copies: {total / 1024:.1f} KB compressed")
    # Headless chromium fetches the manifest only when asked to install; an installing phone also
    # fetches it and an icon, so they are counted in the worst case even when not requested here.
    fetched = {row[1].split("?")[0] for row in rows}
    extra = 0
    for path in ("/manifest.webmanifest", "/static/icons/icon-192.png", "/static/icons/icon-512.png"):
        if path not in fetched:
            body = app.test_client().get(path).data
            extra += len(gzip.compress(body, 6)) if path.endswith("webmanifest") else len(body)
    worst = total + extra
    print(f"worst case, adding manifest and icons an installing phone fetches: {worst / 1024:.1f} KB compressed")
    print(f"budget: {args.budget_kb:g} KB -> {'OK' if worst <= args.budget_kb * 1024 else 'OVER'}")
    return 0 if worst <= args.budget_kb * 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
