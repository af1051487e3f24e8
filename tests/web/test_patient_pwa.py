"""The installable app: manifest, icons, service worker, and forgetting the phone at sign-out."""

import re
import struct

import pytest

from diary.patient import icons

# Static files and page markup.
pytestmark = pytest.mark.any_db


def test_the_service_worker_is_served_from_the_root_with_the_whole_site_as_scope(client):
    r = client.get("/sw.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert r.headers["Service-Worker-Allowed"] == "/"
    assert r.headers["Cache-Control"] == "no-cache"
    assert b"X-Diary-Cache" in r.data


@pytest.mark.parametrize(("lang", "name"), [("en", "Medicine diary"), ("zh", "服药日记")])
def test_the_manifest_names_the_app_in_the_page_language(client, lang, name):
    r = client.get(f"/manifest.webmanifest?lang={lang}")
    assert r.mimetype == "application/manifest+json"
    manifest = r.get_json()
    assert manifest["name"] == name and manifest["start_url"] == "/" and manifest["display"] == "standalone"
    purposes = {(i["sizes"], i["purpose"]) for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= purposes


def test_every_manifest_icon_exists_with_its_stated_size(client):
    for icon in client.get("/manifest.webmanifest").get_json()["icons"]:
        r = client.get(icon["src"])
        assert r.status_code == 200, icon["src"]
        if icon["type"] == "image/png":
            assert r.data[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = struct.unpack(">II", r.data[16:24])
            assert f"{width}x{height}" == icon["sizes"]


def test_the_icon_drawing_fills_a_maskable_icon_to_the_corner():
    corner_alpha = icons.draw(16, maskable=True)[1 + 3]  # first pixel after the row's filter byte
    rounded_alpha = icons.draw(16)[1 + 3]
    assert corner_alpha == 255 and rounded_alpha < 255


def test_participant_pages_link_the_manifest_and_the_script(client, auth, world):
    auth.participant("pa")
    html = client.get("/").get_data(as_text=True)
    assert 'rel="manifest" href="/manifest.webmanifest?lang=en"' in html
    # Content-hashed (diary/static_assets.py): a new version is a new URL.
    assert re.search(r'<script src="/static/app\.js\?v=[0-9a-f]{12}" defer></script>', html)


def test_participant_pages_name_their_offline_cache_partition_without_revealing_who(client, auth, world):
    auth.participant("pa")
    partition = client.get("/").headers["X-Diary-Cache"]
    assert len(partition) == 24 and str(world.participants["pa"].id) != partition
    client.post("/logout", data={"csrf_token": auth.csrf("/")})
    auth.participant("pb")
    assert client.get("/").headers["X-Diary-Cache"] != partition


def test_signing_out_tells_the_browser_to_wipe_cached_pages_and_the_offline_queue(client, auth, world):
    auth.participant("pa")
    r = client.post("/logout", data={"csrf_token": auth.csrf("/")})
    assert r.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert "X-Diary-Cache" not in client.get("/login").headers


@pytest.mark.parametrize("path", ["/static/app.css", "/static/app.js", "/sw.js", "/manifest.webmanifest"])
def test_files_the_browser_fetches_in_the_background_never_send_the_session_cookie(client, auth, world, clock,
                                                                                  path):
    # The service worker refreshes cached files after a page is shown; if such a response finished
    # after sign-out and carried the old session, the next sign-in failed its CSRF check.
    auth.participant("pa")
    clock.advance(days=1)
    assert "session=" in client.get("/").headers.get("Set-Cookie", "")  # pages still refresh it
    clock.advance(days=1)
    r = client.get(path)
    assert r.status_code == 200
    assert "Set-Cookie" not in r.headers


def _session_cookie(response) -> str | None:
    return next((c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")), None)


def test_a_signed_in_phone_gets_its_session_cookie_renewed_once_a_day_not_on_every_tap(client, auth, world, clock):
    # The cookie's expiry slides with use, a day at a time: re-sending it on every check-off only
    # costs work and bytes down the phone's line.
    auth.participant("pa")
    first = client.get("/")
    html = first.get_data(as_text=True)
    assert _session_cookie(first) is None  # sent with the sign-in, the same day
    base = re.search(r'action="(/courses/\d+/days/\d+)/taken"', html).group(1)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)
    tap = client.post(f"{base}/taken", data={"client_key": "daily-cookie-1", "csrf_token": token},
                      headers={"HX-Request": "true"})
    assert tap.status_code == 200 and _session_cookie(tap) is None
    clock.advance(days=1)
    renewed = _session_cookie(client.get("/"))
    assert renewed is not None and "Expires=" in renewed
    assert _session_cookie(client.get("/")) is None
    assert "I took it" in client.get("/").get_data(as_text=True)  # still signed in, on the renewed cookie
