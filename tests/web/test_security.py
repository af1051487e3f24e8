"""Security headers, cookie flags, no inline script, and rate-limited sign-in."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from diary import create_app
from diary.auth import services as auth_services
from tests.conftest import PIN, csrf_from

# Headers, cookies and rate limits are the web layer's, whatever the database.
pytestmark = pytest.mark.any_db

ANONYMOUS_PAGES = ["/login", "/staff/login", "/pin/forgot", "/pin/reset", "/activate/no-such-link", "/no-such-page"]
PARTICIPANT_PAGES = ["/"]
STAFF_PAGES = ["/staff/", "/staff/participants/{pa}"]


class InlineCode(HTMLParser):
    """Collects everything a CSP without 'unsafe-inline' would block or that runs inline code."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if not attrs.get("src"):
                self.scripts.append("<script> without src")
            self._in = tag
        if tag == "style":
            self.styles.append("<style> element")
        for name, value in attrs.items():
            if name.startswith("on"):
                self.scripts.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.scripts.append(f"<{tag} {name}=javascript:...>")
            if name == "style":
                self.styles.append(f"<{tag} style=...>")

    def handle_data(self, data):
        if self._in == "script" and data.strip():
            self.scripts.append(f"inline script text: {data.strip()[:40]}")

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None


def _inline(html: str) -> InlineCode:
    parser = InlineCode()
    parser.feed(html)
    return parser


def _pages(client, auth, world, who):
    """(url, response) of every page this visitor can see, including the sign-in steps."""
    pa = world.participants["pa"].id
    if who == "anonymous":
        return [(url, client.get(url)) for url in ANONYMOUS_PAGES]
    if who == "participant":
        auth.participant("pa")
        return [(url, client.get(url)) for url in PARTICIPANT_PAGES]
    if who == "staff":
        token = csrf_from(client, "/staff/login")
        client.post("/staff/login", data={"csrf_token": token, "email": "nurse_a@test.example",
                                          "password": "correct horse battery"})
        pages = [("/staff/login/code", client.get("/staff/login/code"))]
        auth.staff("nurse_a")
        pages += [(url.format(pa=pa), client.get(url.format(pa=pa))) for url in STAFF_PAGES]
        r = client.post(f"/staff/participants/{pa}/activation", data={"csrf_token": auth.csrf("/staff/")})
        return [*pages, ("activation link page", r)]
    raise AssertionError(who)


@pytest.fixture
def activation_page(app, client, session, world, clock):
    token = auth_services.issue_activation(
        session, world.participants["pa"], world.staff["nurse_a"].id, clock.now,
        auth_services.Policy(activation_hours=app.config["ACTIVATION_HOURS"]))
    session.commit()
    return client.get(f"/activate/{token}")


@pytest.fixture
def totp_setup_page(app, client, session, world):
    from diary.models import StaffUser

    staff = session.get(StaffUser, world.staff["admin"].id)
    staff.totp_secret_enc = None
    session.add(staff)
    session.commit()
    token = csrf_from(client, "/staff/login")
    client.post("/staff/login", data={"csrf_token": token, "email": "admin@test.example",
                                      "password": "correct horse battery"})
    return client.get("/staff/login/setup-code")


WHO = ["anonymous", "participant", "staff"]


@pytest.mark.parametrize("who", WHO)
def test_every_page_has_a_content_security_policy_without_unsafe_inline(client, auth, world, who):
    for url, r in _pages(client, auth, world, who):
        csp = r.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp, url
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
        assert "frame-ancestors 'none'" in csp, url


@pytest.mark.parametrize("who", WHO)
def test_no_page_carries_inline_script(client, auth, world, who):
    for url, r in _pages(client, auth, world, who):
        assert r.mimetype == "text/html", url
        assert _inline(r.get_data(as_text=True)).scripts == [], url


@pytest.mark.parametrize("who", WHO)
def test_no_page_carries_inline_style_that_the_policy_would_block(client, auth, world, who):
    for url, r in _pages(client, auth, world, who):
        assert _inline(r.get_data(as_text=True)).styles == [], url


def test_the_pin_and_authenticator_set_up_pages_carry_no_inline_code(activation_page, totp_setup_page):
    for r in (activation_page, totp_setup_page):
        assert r.status_code == 200
        found = _inline(r.get_data(as_text=True))
        assert found.scripts == [] and found.styles == []


def test_the_inline_code_check_finds_inline_code():
    found = _inline('<p style="color:red" onclick="x()"><script>alert(1)</script><a href="javascript:x()">x</a>')
    assert found.scripts == ["<p onclick=...>", "<script> without src", "inline script text: alert(1)",
                             "<a href=javascript:...>"]
    assert found.styles == ["<p style=...>"]


@pytest.mark.parametrize("who", WHO)
def test_pages_are_never_stored_by_caches(client, auth, world, who):
    for url, r in _pages(client, auth, world, who):
        assert "no-store" in r.headers.get("Cache-Control", ""), url


@pytest.mark.parametrize("who", WHO)
def test_pages_refuse_framing_and_sniffing(client, auth, world, who):
    for url, r in _pages(client, auth, world, who):
        assert r.headers.get("X-Content-Type-Options") == "nosniff", url
        assert r.headers.get("X-Frame-Options") == "DENY", url


def _cookie(response, name):
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return {part.strip().split("=", 1)[0].lower(): part.strip() for part in header.split(";")}
    raise AssertionError(f"{name} not set: {response.headers.getlist('Set-Cookie')}")


@pytest.mark.parametrize("name", ["session", "remember_token"])
def test_sign_in_cookies_are_http_only_and_same_site_lax(client, auth, name):
    r = auth.participant("pa")
    cookie = _cookie(r, name)
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "samesite=lax"


@pytest.fixture
def production_app(monkeypatch, database_url, clock):
    monkeypatch.setenv("DIARY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "production-test-secret")
    monkeypatch.setenv("DATA_ENCRYPTION_KEY", "test-data-key")  # the key the world was built with
    for name in ("SESSION_COOKIE_SECURE", "SECRET_KEY_FILE", "DATA_ENCRYPTION_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "RATELIMIT_ENABLED": False,
                      "SMS_BACKEND": "console", "PUBLIC_BASE_URL": None})
    app.extensions["diary.clock"] = clock
    yield app
    app.extensions["diary.engine"].dispose()


@pytest.mark.parametrize("name", ["session", "remember_token"])
def test_in_production_sign_in_cookies_are_secure(production_app, world, name):
    client = production_app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    token = csrf_from(client, "/login")
    r = client.post("/login", data={"csrf_token": token, "phone": world.phones["pa"], "pin": PIN})
    assert r.status_code == 302
    assert "secure" in _cookie(r, name)


def test_in_development_cookies_work_over_plain_http(client, auth):
    r = auth.participant("pa")
    assert "secure" not in _cookie(r, "session")


@pytest.fixture
def rate_limited_app(database_url, clock):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
                      "DATA_ENCRYPTION_KEY": "test-data-key", "SMS_BACKEND": "console",
                      "PUBLIC_BASE_URL": None, "RATELIMIT_ENABLED": True,
                      "RATELIMIT_STORAGE_URI": "memory://", "LOGIN_RATE_LIMIT": "3 per minute"})
    app.extensions["diary.clock"] = clock
    yield app
    app.extensions["diary.engine"].dispose()


def _attempt(client, phone="+8613800009999"):
    token = csrf_from(client, "/login")
    return client.post("/login", data={"csrf_token": token, "phone": phone, "pin": "0000"})


def test_the_fourth_sign_in_attempt_in_a_minute_is_rate_limited(rate_limited_app):
    client = rate_limited_app.test_client()
    assert [_attempt(client).status_code for _ in range(3)] == [401, 401, 401]
    assert _attempt(client).status_code == 429


def test_the_rate_limit_counts_per_address(rate_limited_app):
    for _ in range(3):
        _attempt(rate_limited_app.test_client())
    other = rate_limited_app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.7"
    assert _attempt(other).status_code == 401


def test_reading_the_sign_in_page_is_not_rate_limited(rate_limited_app):
    client = rate_limited_app.test_client()
    assert [client.get("/login").status_code for _ in range(5)] == [200] * 5
