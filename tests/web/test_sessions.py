"""Sign-out ends a session on the server (issue 11, item 9): a cookie copied before stops working,
a PIN reset or deactivation ends every session, and participants end their other phones."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from diary.models import DeviceSession, DoseLog
from tests.conftest import PIN, csrf_from
from tests.web.race_helpers import new_client


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def copy_of(app, client):
    """Another browser holding a copy of `client`'s cookies, as a thief or a shared computer would."""
    thief = new_client(app)
    for name in ("session", "remember_token"):
        cookie = client.get_cookie(name)
        if cookie:
            thief.set_cookie(name, cookie.value)
    return thief


def sign_in_pa(app, world, user_agent="Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile Safari/537.36"):
    phone = new_client(app)
    phone.environ_base["HTTP_USER_AGENT"] = user_agent
    token = csrf_from(phone, "/login")
    r = phone.post("/login", data={"csrf_token": token, "phone": world.phones["pa"], "pin": PIN})
    assert r.status_code == 302
    return phone


def test_a_participant_cookie_copied_before_sign_out_no_longer_works(app, client, auth, world):
    auth.participant("pa")
    thief = copy_of(app, client)
    assert thief.get("/").status_code == 200
    client.post("/logout", data={"csrf_token": auth.csrf("/")})
    r = thief.get("/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_a_staff_cookie_copied_before_sign_out_no_longer_works(app, client, auth, world):
    auth.staff("nurse_a")
    thief = copy_of(app, client)
    assert thief.get("/staff/").status_code == 200
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    r = thief.get("/staff/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login")


def test_signing_out_one_phone_leaves_the_others_signed_in(app, world):
    first, second = sign_in_pa(app, world), sign_in_pa(app, world)
    first.post("/logout", data={"csrf_token": csrf_from(first, "/")})
    assert second.get("/").status_code == 200


def test_deactivating_a_staff_member_ends_their_open_sessions(app, client, auth, runner, world):
    auth.staff("nurse_a")
    result = runner.invoke(args=["deactivate-staff", "--email", "nurse_a@test.example", "--reason", "left"])
    assert result.exit_code == 0, result.output
    assert "1 open session(s) ended" in result.output
    r = client.get("/staff/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login")


def test_settings_list_the_signed_in_phones_and_mark_this_one(app, world):
    sign_in_pa(app, world, user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Version/17.0 Safari/604.1")
    phone = sign_in_pa(app, world)
    html = phone.get("/settings").get_data(as_text=True)
    assert "Where you are signed in" in html
    assert "Safari · iPhone" in html and "Chrome · Android" in html
    assert html.count("This phone") == 1 and html.count("Sign out this phone") == 1


def test_a_participant_signs_out_another_phone_from_settings(app, world, session):
    other = sign_in_pa(app, world, user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Version/17.0 Safari/604.1")
    phone = sign_in_pa(app, world)
    html = phone.get("/settings").get_data(as_text=True)
    [action] = re.findall(r'action="(/settings/devices/\d+/end)"', html)
    r = phone.post(action, data={"csrf_token": csrf_from(phone, "/settings")})
    assert r.status_code == 303
    assert "That phone is signed out." in phone.get("/settings").get_data(as_text=True)
    assert other.get("/").status_code == 302
    assert phone.get("/").status_code == 200
    ended = session.exec(select(DeviceSession).where(DeviceSession.ended_reason == "ended_from_settings")).all()
    assert len(ended) == 1


def test_a_participant_cannot_end_another_participants_phone(app, world, session, auth, client):
    auth.participant("pb")
    [theirs] = session.exec(select(DeviceSession)).all()
    phone = sign_in_pa(app, world)
    r = phone.post(f"/settings/devices/{theirs.id}/end", data={"csrf_token": csrf_from(phone, "/settings")})
    assert r.status_code == 404
    assert client.get("/").status_code == 200


def test_the_devices_section_is_in_chinese_for_a_chinese_participant(app, world, session, client, auth):
    auth.participant("pa")
    client.post("/settings", data={"csrf_token": auth.csrf("/settings"), "reminder_time": "08:00",
                                   "language": "zh", "sms": "on"})
    html = client.get("/settings").get_data(as_text=True)
    assert "已登录的设备" in html and "本机" in html


def test_a_phone_signed_out_from_settings_cannot_check_off_a_dose(app, world, session):
    # The check-off is the request the user loader now reads in one statement (issue 15): the
    # device session must still be refused there, on a form the phone had open before.
    other = sign_in_pa(app, world, user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Version/17.0 Safari/604.1")
    page = other.get("/").get_data(as_text=True)
    base = re.search(r'action="(/courses/\d+/days/\d+)/taken"', page).group(1)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    phone = sign_in_pa(app, world)
    [action] = re.findall(r'action="(/settings/devices/\d+/end)"', phone.get("/settings").get_data(as_text=True))
    assert phone.post(action, data={"csrf_token": csrf_from(phone, "/settings")}).status_code == 303
    r = other.post(f"{base}/taken", data={"client_key": "after-sign-out", "csrf_token": token},
                   headers={"HX-Request": "true"})
    assert r.headers.get("HX-Redirect", "").startswith("/login")
    assert "You took it" not in r.get_data(as_text=True)
    assert session.exec(select(DoseLog)).all() == []


def test_an_idle_staff_session_ends_on_whatever_page_is_asked_for_first(app, client, auth, clock, session):
    # The idle check no longer loads a participant's or a visitor's session, but a staff member's
    # is still ended after the idle time, outside the staff pages too (the sign-in page, a file).
    auth.staff("nurse_a")
    clock.advance(seconds=app.config["STAFF_IDLE_TIMEOUT"].total_seconds() + 60)
    client.get("/static/app.css")
    [row] = session.exec(select(DeviceSession).where(DeviceSession.staff_id.is_not(None))).all()
    session.refresh(row)
    assert row.ended_reason == "idle"
    r = client.get("/staff/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login")
