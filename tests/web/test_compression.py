"""Compression and caching (issue 14, item 6): the app itself sends brotli or gzip, static files
have content-hashed URLs cached for a year, and the service worker follows the new names."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
from types import SimpleNamespace

import brotli
import pytest

from diary import static_assets
from diary.patient.pwa import worker_source

pytestmark = pytest.mark.any_db

ASSET = re.compile(r'(?:src|href)="(/static/[^"]+)"')


def _today(client, auth, encoding: str | None):
    auth.participant("pa")
    return client.get("/", headers={"Accept-Encoding": encoding} if encoding else {})


@pytest.mark.parametrize(("encoding", "decode"), [("br", brotli.decompress), ("gzip", gzip.decompress)])
def test_pages_are_sent_compressed_to_a_browser_that_accepts_it(client, auth, world, encoding, decode):
    r = _today(client, auth, f"{encoding}, identity;q=0.5")
    assert r.status_code == 200 and r.headers["Content-Encoding"] == encoding
    html = decode(r.get_data()).decode()
    assert "Day 3 of 14" in html
    assert len(r.get_data()) < len(html.encode()) / 3
    assert "Accept-Encoding" in r.headers["Vary"]
    assert r.headers["Cache-Control"] == "no-store"  # still: pages carry health data


def test_a_browser_asking_for_modern_encodings_gets_brotli(client, auth, world):
    # What chromium sends.
    assert _today(client, auth, "gzip, deflate, br, zstd").headers["Content-Encoding"] == "br"


def test_a_client_that_accepts_no_encoding_gets_plain_text(client, auth, world):
    r = _today(client, auth, None)
    assert "Content-Encoding" not in r.headers and b"Day 3 of 14" in r.get_data()


def test_every_static_file_a_page_references_has_a_content_hash_and_is_immutable(client, auth, world):
    html = _today(client, auth, None).get_data(as_text=True)
    assets = ASSET.findall(html)
    assert {a.split("?")[0] for a in assets} >= {"/static/app.css", "/static/app.js",
                                                  "/static/vendor/htmx-2.0.11.min.js"}
    for url in assets:
        assert re.search(r"\?v=[0-9a-f]{12}$", url), url
        r = client.get(url, headers={"Accept-Encoding": "br"})
        assert r.status_code == 200, url
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable", url
        if url.split("?")[0].endswith((".css", ".js")):
            assert r.headers["Content-Encoding"] == "br", url
            assert "Set-Cookie" not in r.headers


def test_the_hash_is_the_files_content(app, client):
    with app.test_request_context():
        url = static_assets.versioned("app.js")
    digest = url.split("v=")[1]
    assert hashlib.sha256(client.get("/static/app.js").get_data()).hexdigest()[:12] == digest


@pytest.mark.parametrize("query", ["", "?v=000000000000"])
def test_a_url_without_the_current_hash_is_never_cached_for_long(client, query):
    # An old page asking for an old version gets today's file, which must not be kept as that version.
    r = client.get(f"/static/app.css{query}")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"


def test_the_service_worker_caches_the_content_hashed_shell(client):
    source = client.get("/sw.js").get_data(as_text=True)
    shell = re.search(r"var SHELL_FILES = \[(.*?)\];", source, re.S).group(1)
    urls = re.findall(r'"([^"]+)"', shell)
    assert urls and all(re.fullmatch(r"/static/[\w./-]+\?v=[0-9a-f]{12}", url) for url in urls), urls
    assert re.search(r'caches\.match\("/static/offline\.html\?v=[0-9a-f]{12}"\)', source)
    assert re.search(r'var SHELL = "shell-[0-9a-f]{12}";', source)


def test_a_changed_static_file_gives_a_new_worker_with_a_new_shell(app, tmp_path):
    static = tmp_path / "static"
    shutil.copytree(app.static_folder, static)
    fake = SimpleNamespace(static_folder=str(static))
    before = worker_source(fake)
    (static / "app.css").write_text((static / "app.css").read_text() + "\n/* v2 */\n")
    after = worker_source(fake)
    shell = re.compile(r'var SHELL = "(shell-[0-9a-f]{12})";')
    css = re.compile(r'"(/static/app\.css\?v=[0-9a-f]{12})"')
    assert shell.search(before).group(1) != shell.search(after).group(1)
    assert css.search(before).group(1) != css.search(after).group(1)


def test_static_files_that_are_never_documents_skip_the_document_policies(app, client):
    # ~400 bytes of headers per file on the first load; HTML and SVG (documents) keep them.
    with app.test_request_context():
        js, html, svg = (static_assets.versioned(name) for name in ("app.js", "offline.html", "icons/icon.svg"))
    assert "Content-Security-Policy" not in client.get(js).headers
    assert client.get(js).headers["X-Content-Type-Options"] == "nosniff"
    for url in (html, svg):
        assert "frame-ancestors 'none'" in client.get(url).headers["Content-Security-Policy"], url


def test_the_served_shell_name_follows_the_hashes_whatever_name_the_file_gives(app, tmp_path):
    static = tmp_path / "static"
    shutil.copytree(app.static_folder, static)
    worker = static / "sw.js"
    worker.write_text(re.sub(r'var SHELL = "shell-[^"]*";', 'var SHELL = "shell-v2";', worker.read_text()))
    assert re.search(r'var SHELL = "shell-[0-9a-f]{12}";', worker_source(SimpleNamespace(static_folder=str(static))))
