"""Error pages (issue 14, item 4): every error a person can meet is a page in their area's style
and their language, with a way back; htmx requests get a fragment for the message area; a CSRF
refusal on a participant form shows the form again as typed; no Werkzeug English page."""

from __future__ import annotations

import re
import uuid

import pytest
from flask import request
from sqlmodel import func, select

from diary.models import SymptomReport
from tests.conftest import csrf_from, make_test_app

pytestmark = pytest.mark.any_db

WERKZEUG = ("The requested URL was not found", "The method is not allowed", "The browser (or proxy) sent",
            "The server encountered an internal error", "Request Entity Too Large", "Too Many Requests",
            "You don't have the permission", "The CSRF token")
TITLES = {
    400: ("This page had expired", "页面已过期"),
    403: ("No access", "没有访问权限"),
    404: ("Page not found", "找不到页面"),
    405: ("Not possible here", "此处无法这样操作"),
    413: ("Too large", "内容过大"),
    429: ("Too many attempts", "尝试次数过多"),
    500: ("Something went wrong", "出了点问题"),
}
KEY = uuid.uuid4().hex
ACCEPT = {"en": "en", "zh": "zh-CN,zh;q=0.9"}


@pytest.fixture
def error_app(database_url, clock):
    """A fresh app with rate limits on, a small body limit and a route that fails."""
    app = make_test_app(database_url, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="2 per minute",
                        MAX_CONTENT_LENGTH=4096)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/needs-a-key", "needs_a_key", lambda: request.args["missing"])
    app.add_url_rule("/staff/boom", "staff_boom", boom)
    app.extensions["diary.clock"] = clock
    yield app
    app.extensions["diary.engine"].dispose()
    from diary.extensions import limiter

    limiter.enabled = False


def _provoke(client, code: int, area: str):
    login = "/staff/login" if area == "staff" else "/login"
    if code == 400:  # a form sent without its CSRF token (a page open across a session change)
        return client.post("/staff/logout" if area == "staff" else "/logout")
    if code == 404:
        return client.get("/staff/no-such-page" if area == "staff" else "/no-such-page")
    if code == 405:
        return client.get("/staff/logout" if area == "staff" else "/logout")
    if code == 413:
        return client.post(login, data={"phone": "x" * 10_000})
    if code == 429:
        for _ in range(3):
            r = client.post(login, data={"csrf_token": csrf_from(client, login), "phone": "+8613800009999",
                                         "pin": "0000", "email": "nobody@test.example", "password": "x" * 12})
        return r
    if code == 500:
        return client.get("/staff/boom" if area == "staff" else "/boom")
    raise AssertionError(code)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("area", ["patient", "staff"])
@pytest.mark.parametrize("code", [400, 404, 405, 413, 429, 500])
def test_each_error_is_a_translated_page_in_its_area_with_a_way_back(error_app, code, area, lang):
    client = error_app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = ACCEPT[lang]
    r = _provoke(client, code, area)
    html = r.get_data(as_text=True)
    assert r.status_code == code
    assert r.mimetype == "text/html"
    title = TITLES[code][0 if lang == "en" else 1]
    assert f"<h1>{title}</h1>" in html
    assert f'<body class="{area}"' in html
    assert f'<html lang="{"en" if lang == "en" else "zh-CN"}">' in html
    home = "/staff/" if area == "staff" else "/"
    assert f'href="{home}"' in html  # the way back
    assert not any(text in html for text in WERKZEUG)
    assert "per 1 minute" not in html  # nor Flask-Limiter's
    assert r.headers["X-Request-ID"] in html  # the reference an operator finds in the logs


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_participant_opening_a_staff_page_gets_a_403_page_in_the_diarys_style(client, auth, world, session,
                                                                               lang):
    from diary.models import Participant

    participant = session.get(Participant, world.participants["pa"].id)
    participant.language = lang
    session.commit()
    auth.participant("pa")
    r = client.get("/staff/flags")
    html = r.get_data(as_text=True)
    assert r.status_code == 403
    assert f"<h1>{TITLES[403][0 if lang == 'en' else 1]}</h1>" in html
    assert '<body class="patient"' in html and 'href="/"' in html
    assert not any(text in html for text in WERKZEUG)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_nurse_opening_an_investigators_page_gets_a_403_page_in_the_staff_style(client, auth, lang):
    auth.staff("nurse_a")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = ACCEPT[lang]  # staff read in their browser's language
    r = client.get("/staff/export")
    html = r.get_data(as_text=True)
    assert r.status_code == 403
    assert f"<h1>{TITLES[403][0 if lang == 'en' else 1]}</h1>" in html
    assert '<body class="staff"' in html and 'href="/staff/"' in html
    assert not any(text in html for text in WERKZEUG)


@pytest.mark.parametrize(("lang", "text"), [("en", "Page not found"), ("zh", "找不到页面")])
def test_an_htmx_request_gets_a_fragment_aimed_at_the_message_area(client, auth, lang, text):
    auth.staff("nurse_a")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = ACCEPT[lang]
    r = client.post("/staff/flags/999999/acknowledge", data={"csrf_token": auth.csrf("/staff/flags"), "note": "x"},
                    headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/staff/flags"})
    html = r.get_data(as_text=True)
    assert r.status_code == 404
    assert r.headers["HX-Retarget"] == "#request-error" and r.headers["HX-Reswap"] == "innerHTML"
    assert text in html and "<html" not in html and 'href="/staff/flags"' in html


def test_every_page_has_the_message_area_and_htmx_swaps_error_answers(client, auth):
    auth.staff("nurse_a")
    html = client.get("/staff/flags").get_data(as_text=True)
    assert '<div id="request-error" class="request-error" role="alert"></div>' in html
    assert '{"code": "[45]..", "swap": true, "error": true}' in html


def test_a_json_request_gets_a_json_error(client, auth):
    auth.participant("pa")
    r = client.post("/sync/dose", json={"client_key": "x"})  # no CSRF header
    assert r.status_code == 400 and r.is_json and r.get_json()["error"] == "csrf_expired"


def test_a_csrf_refusal_on_the_symptom_checklist_shows_it_again_as_ticked_and_typed(client, auth, world, session):
    auth.participant("pa")
    client.get("/symptoms")
    r = client.post("/symptoms", data={"csrf_token": "expired", "client_key": KEY, "symptom": "nosebleed",
                                       "severity-nosebleed": "moderate", "note": "Since Sunday after dinner"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "What you entered is still here" in html
    assert re.search(r'id="s-nosebleed" name="symptom" value="nosebleed" checked', html)
    assert re.search(r'name="severity-nosebleed" value="moderate" checked', html)
    assert ">Since Sunday after dinner</textarea>" in html
    assert session.exec(select(func.count()).select_from(SymptomReport)).one() == 0
    # The fresh token in the page works: sending again records the report.
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    key = re.search(r'name="client_key" value="([^"]+)"', html).group(1)
    r = client.post("/symptoms", data={"csrf_token": token, "client_key": key, "symptom": "nosebleed",
                                       "severity-nosebleed": "moderate", "note": "Since Sunday after dinner"})
    assert r.status_code in (200, 303)
    assert session.exec(select(func.count()).select_from(SymptomReport)).one() == 1


def test_a_csrf_refusal_on_settings_keeps_the_choices(client, auth):
    auth.participant("pa")
    r = client.post("/settings", data={"csrf_token": "expired", "reminder_time": "10:15", "language": "zh",
                                       "sms": "off"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "What you entered is still here" in html
    assert 'value="10:15"' in html and re.search(r'id="sms-off" name="sms" value="off" checked', html)


def test_a_csrf_refusal_on_sign_in_keeps_the_phone_number_but_never_the_pin(client, world):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.get("/login")
    r = client.post("/login", data={"csrf_token": "expired", "phone": world.phones["pa"], "pin": "4826"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "What you entered is still here" in html
    assert f'value="{world.phones["pa"]}"' in html and "4826" not in html


def test_an_htmx_csrf_refusal_carries_a_fresh_token_and_leaves_the_form_alone(client, auth, world):
    auth.participant("pa")
    course = world.courses["pa"]
    r = client.post(f"/courses/{course.id}/days/3/taken", data={"csrf_token": "expired", "client_key": KEY},
                    headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/"})
    assert r.status_code == 400
    assert r.headers["HX-Retarget"] == "#request-error"
    fresh = r.headers["X-CSRF-Token"]
    r = client.post(f"/courses/{course.id}/days/3/taken", data={"csrf_token": fresh, "client_key": KEY},
                    headers={"HX-Request": "true"})
    assert r.status_code == 200


@pytest.mark.parametrize(("lang", "text"), [("en", "could not be read"), ("zh", "无法读取")])
def test_a_missing_form_key_is_a_translated_400_not_werkzeugs_sentence(error_app, lang, text):
    client = error_app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = ACCEPT[lang]
    r = client.get("/needs-a-key")
    assert r.status_code == 400 and text in r.get_data(as_text=True)
    assert "The browser (or proxy) sent" not in r.get_data(as_text=True)


def test_a_nul_byte_gets_its_own_translated_explanation_on_the_error_page(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = ACCEPT["zh"]
    r = client.post("/login", data={"csrf_token": csrf_from(client, "/login"), "phone": "1\x00", "pin": "1234"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "您输入的内容含有无法保存的字符" in html and '<body class="patient"' in html


def test_a_csrf_refusal_on_forgot_pin_keeps_the_phone_number(client, world):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    r = client.post("/pin/forgot", data={"csrf_token": "expired", "phone": world.phones["pa"]})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "What you entered is still here" in html
    assert f'value="{world.phones["pa"]}"' in html


@pytest.mark.parametrize("who", ["staff", "participant"])
def test_with_the_database_down_the_500_page_still_comes_in_the_right_style(app, client, auth, tmp_path, who):
    from diary import db

    auth.staff("nurse_a") if who == "staff" else auth.participant("pa")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    working = app.extensions["diary.engine"]
    app.extensions["diary.engine"] = db.make_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite3")
    try:
        r = client.get("/staff/" if who == "staff" else "/", headers={"Accept-Language": "en"})
    finally:
        app.extensions["diary.engine"].dispose()
        app.extensions["diary.engine"] = working
    html = r.get_data(as_text=True)
    assert r.status_code == 500 and "<h1>Something went wrong</h1>" in html
    assert f'<body class="{"staff" if who == "staff" else "patient"}"' in html
