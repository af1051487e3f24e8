"""End-to-end harness: the real app on 127.0.0.1 and Debian's chromium under Playwright.

Playwright cannot download its own browser here, so the launch points at /usr/bin/chromium
with the flags DESIGN.md lists (the machine's network is closed; background fetches would hang).
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import axe_playwright_python
import pytest
from werkzeug.serving import make_server

from tests.conftest import Clock

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AXE_SOURCE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def backend():
    # Browser tests exercise pages, not the data layer: one backend is enough here.
    return "sqlite"


@pytest.fixture
def clock():
    """Real time, frozen at the start of the test so that course days are today's."""
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (bin/test does)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, playwright):
    phone = dict(playwright.devices["Pixel 7"])
    phone.pop("default_browser_type", None)
    return {**browser_context_args, **phone, "locale": "en-GB", "timezone_id": "Asia/Shanghai"}


class LiveServer:
    def __init__(self, app):
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    """The app served over HTTP on a free port of 127.0.0.1 (a secure context for service workers)."""
    app.config["SERVER_NAME"] = None
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def console_errors(page):
    """Console errors of the page, CSP refusals included: a test can assert there are none."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the current page, as (rule id, impact, first targets)."""
    # page.evaluate runs through the DevTools protocol, which the page's CSP does not govern,
    # so axe can be injected without weakening the policy under test.
    page.evaluate(AXE_SOURCE)
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
        }"""
    )


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
