"""First-load transfer of the participant's today page, as gunicorn actually sends it.

Starts gunicorn (2 workers, the app as deployed: compression and caching are the app's own) on a
fresh SQLite database with one signed-in participant, puts a byte-counting TCP relay in front of
it, and opens the today page in Debian's chromium (Pixel 7 emulation, empty cache). It prints every
response gunicorn logged (status, body bytes as sent, path) and the bytes that crossed the relay
from the server to the browser — headers included — until the load event, and then including the
service worker's install and offline copies. An installing phone also fetches the manifest and an
icon: the worst case adds them, fetched from gunicorn the same way. Budget: 40 KB, aim 30 KB.

    .venv/bin/python bench/first_load.py [--budget-kb 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diary import create_app, db, migrate  # noqa: E402
from diary.auth.services import hash_secret  # noqa: E402
from diary.models import Site, StaffUser  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PHONE, PIN = "+8613800001111", "4826"
SETTINGS = {"SECRET_KEY": "bench-secret", "DATA_ENCRYPTION_KEY": "bench-data", "RATELIMIT_ENABLED": "false",
            "SMS_BACKEND": "console", "LOG_LEVEL": "WARNING"}
CHROME_ENCODINGS = "gzip, deflate, br, zstd"


def build_database(folder: Path) -> str:
    url = f"sqlite:///{folder / 'bench.sqlite3'}"
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    app = create_app({"DATABASE_URL": url, **SETTINGS, "RATELIMIT_ENABLED": False})
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
    app.extensions["diary.engine"].dispose()
    return url


def signed_in_cookies(base: str) -> list[dict]:
    """Sign in over HTTP before the browser starts, so its first request is the today page itself."""
    jar = urllib.request.HTTPCookieProcessor()
    opener = urllib.request.build_opener(jar, _NoRedirect)
    html = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)
    body = urllib.parse.urlencode({"csrf_token": token, "phone": PHONE, "pin": PIN}).encode()
    try:
        opener.open(base + "/login", data=body)
    except urllib.error.HTTPError as answer:
        assert answer.code == 302, f"bench sign-in failed: {answer.code}"
    return [{"name": c.name, "value": c.value, "url": base} for c in jar.cookiejar
            if c.name in ("session", "remember_token")]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Relay:
    """A TCP relay that counts the bytes the server sends to the browser."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.sent_to_browser = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                browser, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(browser, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, browser, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if count:
                    with self.lock:
                        self.sent_to_browser += len(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def count(self) -> int:
        with self.lock:
            return self.sent_to_browser


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(url: str, port: int, access_log: Path, workers: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=url, **SETTINGS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--access-logfile", str(access_log), "--access-logformat", "%(s)s %(B)s %(r)s",
         # Files through write(), not sendfile(): the same bytes, but then the access log counts them.
         "--no-sendfile", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def wire_size(url: str) -> int:
    """Headers and body of one response as sent to chromium (for the manifest and icons)."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": CHROME_ENCODINGS})
    with urllib.request.urlopen(request) as r:
        body = r.read()
        headers = sum(len(k) + len(v) + 4 for k, v in r.headers.items()) + len("HTTP/1.1 200 OK\r\n\r\n")
    return len(body) + headers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-kb", type=float, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        url = build_database(Path(tmp))
        port, access_log = free_port(), Path(tmp) / "access.log"
        gunicorn = start_gunicorn(url, port, access_log, args.workers)
        try:
            relay = Relay(port)
            base = f"http://127.0.0.1:{relay.port}"
            cookies = signed_in_cookies(base)
            time.sleep(0.2)
            already_logged = len(access_log.read_text().splitlines())
            start = relay.count()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                device = dict(pw.devices["Pixel 7"])
                device.pop("default_browser_type", None)
                context = browser.new_context(**device, locale="zh-CN")
                context.add_cookies(cookies)
                page = context.new_page()
                page.goto(base + "/", wait_until="load")
                on_load, logged_at_load = relay.count() - start, len(access_log.read_text().splitlines())
                page.wait_for_load_state("networkidle")
                page.evaluate("navigator.serviceWorker.ready.then(() => true)")
                time.sleep(2)  # the worker's install and offline warm-up run after the load event
                page.wait_for_load_state("networkidle")
                fetched = [_path(line).split("?")[0] for line in access_log.read_text().splitlines()[already_logged:]]
                context.close()
                browser.close()
            total = relay.count() - start
            extra = sum(wire_size(f"http://127.0.0.1:{port}{path}") for path in
                        ("/manifest.webmanifest?lang=zh", "/static/icons/icon-192.png")
                        if path.split("?")[0] not in fetched)
            lines = access_log.read_text().splitlines()[already_logged:]
        finally:
            gunicorn.terminate()
            gunicorn.wait(timeout=10)

    print(f"gunicorn ({args.workers} workers), chromium Pixel 7, empty cache, Accept-Encoding: {CHROME_ENCODINGS}\n")
    print(f"{'when':<6} {'status':>6} {'body':>7}  path")
    for n, line in enumerate(lines):
        status, size = line.split(" ", 2)[:2]
        print(f"{'load' if n < logged_at_load - already_logged else 'after':<6} {status:>6} {size:>7}  {_path(line)}")
    bodies = sum(int(line.split(" ", 2)[1]) for line in lines[:logged_at_load - already_logged])
    print(f"\nfirst load of the today page, HTML and every asset it references (until the load event):"
          f"\n  {on_load / 1024:.1f} KB on the wire (headers included; bodies {bodies / 1024:.1f} KB)")
    print(f"then the service worker's install and offline copies: {total / 1024:.1f} KB in all")
    print(f"and the manifest and an icon an installing phone fetches: {(total + extra) / 1024:.1f} KB in all")
    ok = on_load <= args.budget_kb * 1024
    print(f"budget for the first load: {args.budget_kb:g} KB (aim 30 KB) -> {'OK' if ok else 'OVER'}")
    return 0 if ok else 1


def _path(access_line: str) -> str:
    """The path and query of an access-log line: '200 2477 GET /static/app.css?v=… HTTP/1.1'."""
    return access_line.split(" ", 2)[2].split(" ")[1]


if __name__ == "__main__":
    sys.exit(main())
