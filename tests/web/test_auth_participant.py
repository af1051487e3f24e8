"""Participant sign-in: activation link and PIN, phone + PIN, lockout, forgot-PIN by SMS code."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from diary.auth import services as auth_services
from diary.models import AccessCode, AuditEvent, Message, Participant
from tests.conftest import PIN, csrf_from
from tests.web.race_helpers import dispatch_outbox

NEW_PIN = "97531"


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture(autouse=True)
def quick_forgot_pin_answers(app):
    app.config["FORGOT_PIN_RESPONSE_SECONDS"] = 0.01


@pytest.fixture
def issue(app, session, world, clock):
    """Issues an activation link for a participant, as staff do, and returns its path."""

    def issue_link(key: str = "pa") -> str:
        with app.app_context():
            policy = auth_services.Policy(activation_hours=app.config["ACTIVATION_HOURS"])
        token = auth_services.issue_activation(
            session, _fresh(session, Participant, world.participants[key].id),
            world.staff["nurse_a"].id, clock.now, policy)
        session.commit()
        return f"/activate/{token}"

    return issue_link


def _fresh(session, model, pk):
    session.rollback()
    session.expire_all()
    return session.get(model, pk)


def _choose_pin(client, link, pin=NEW_PIN, confirm=None):
    token = csrf_from(client, link)
    return client.post(link, data={"csrf_token": token, "pin": pin,
                                   "pin_confirm": pin if confirm is None else confirm})


def _login(client, phone, pin):
    token = csrf_from(client, "/login")
    return client.post("/login", data={"csrf_token": token, "phone": phone, "pin": pin})


def _signed_in(client) -> bool:
    return client.get("/").status_code == 200


def _forgot(client, phone):
    token = csrf_from(client, "/pin/forgot")
    return client.post("/pin/forgot", data={"csrf_token": token, "phone": phone})


def _reset(client, phone, code, pin=NEW_PIN):
    token = csrf_from(client, "/pin/reset")
    return client.post("/pin/reset", data={"csrf_token": token, "phone": phone, "code": code,
                                           "pin": pin, "pin_confirm": pin})


def _sent_codes(app, to):
    dispatch_outbox(app)
    gateway = app.extensions.get("diary.gateway")
    sent = gateway.sent if gateway else []
    return [re.search(r"\b(\d{6})\b", body).group(1) for number, body, _id in sent if number == to]


def _without_tokens(html: str) -> str:
    """The page without its per-session CSRF tokens and the values typed into it."""
    html = re.sub(r'"X-CSRFToken": "[^"]*"', '"X-CSRFToken": ""', html)
    return re.sub(r'value="[^"]*"', 'value=""', html)


# --- activation -------------------------------------------------------------------------------


def test_an_activation_link_lets_the_participant_choose_a_pin_and_signs_them_in(client, issue):
    link = issue()
    assert client.get(link).status_code == 200
    r = _choose_pin(client, link)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert _signed_in(client)


def test_the_chosen_pin_signs_in_on_another_phone(app, client, issue, world):
    _choose_pin(client, issue())
    other = app.test_client()
    assert _login(other, world.phones["pa"], NEW_PIN).status_code == 302
    assert _signed_in(other)


def test_after_activation_the_phone_stays_signed_in_when_the_browser_forgets_its_session(client, issue):
    r = _choose_pin(client, issue())
    cookies = r.headers.getlist("Set-Cookie")
    assert any(c.startswith("remember_token=") for c in cookies)
    client.delete_cookie("session")  # the browser was closed
    assert _signed_in(client)


@pytest.mark.parametrize(("pin", "confirm", "message"), [
    ("2468", "2469", "两次输入的密码不一样。"),
    ("123", "123", "密码是4到6位数字。"),
    ("1234567", "1234567", "密码是4到6位数字。"),
    ("12ab", "12ab", "密码是4到6位数字。"),
])
def test_a_bad_pin_choice_shows_a_translated_error_and_changes_nothing(
        client, issue, session, world, pin, confirm, message):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    link = issue()
    before = _fresh(session, Participant, world.participants["pa"].id)
    pin_hash, version = before.pin_hash, before.auth_version
    r = _choose_pin(client, link, pin, confirm)
    assert r.status_code == 200
    assert message in r.get_data(as_text=True)
    after = _fresh(session, Participant, world.participants["pa"].id)
    assert (after.pin_hash, after.auth_version) == (pin_hash, version)
    assert session.exec(select(AccessCode.used_at)).all() == [None]
    assert not _signed_in(client)


def test_an_activation_link_works_only_once(app, client, issue):
    link = issue()
    _choose_pin(client, link)
    other = app.test_client()
    assert other.get(link).status_code == 410
    assert _choose_pin_without_page(other, link).status_code == 410


def _choose_pin_without_page(client, link):
    token = csrf_from(client, "/login")
    return client.post(link, data={"csrf_token": token, "pin": "8642", "pin_confirm": "8642"})


def test_an_activation_link_expires(app, client, issue, clock):
    link = issue()
    clock.advance(hours=app.config["ACTIVATION_HOURS"], seconds=1)
    assert client.get(link).status_code == 410
    assert _choose_pin_without_page(client, link).status_code == 410


def test_an_activation_link_works_until_it_expires(app, client, issue, clock):
    link = issue()
    clock.advance(hours=app.config["ACTIVATION_HOURS"], seconds=-1)
    assert client.get(link).status_code == 200


def test_a_new_activation_link_cancels_the_older_unused_one(client, issue):
    old, new = issue(), issue()
    assert client.get(old).status_code == 410
    assert client.get(new).status_code == 200


def test_an_unknown_activation_link_is_gone(client, world):
    assert client.get("/activate/not-a-real-token").status_code == 410


def test_the_link_staff_issue_on_their_screen_activates_the_phone(app, client, auth, world):
    auth.staff("nurse_a")
    pa = world.participants["pa"].id
    token = auth.csrf(f"/staff/participants/{pa}")
    r = client.post(f"/staff/participants/{pa}/activation", data={"csrf_token": token})
    assert r.status_code == 200
    link = re.search(r"/activate/[A-Za-z0-9_\-]+", r.get_data(as_text=True)).group(0)
    phone = app.test_client()  # the participant's phone is another browser
    assert _choose_pin(phone, link).status_code == 302
    assert _signed_in(phone)


# --- phone + PIN ------------------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["+8613800001111", "138 0000 1111", "138-0000-1111", "+86 138 0000 1111"])
def test_phone_and_pin_sign_in_accepts_the_number_as_people_type_it(client, world, phone):
    r = _login(client, phone, PIN)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert _signed_in(client)


def test_a_wrong_pin_is_refused(client, world):
    r = _login(client, world.phones["pa"], "0000")
    assert r.status_code == 401
    assert "The phone number or PIN is not right." in r.get_data(as_text=True)
    assert not _signed_in(client)


def test_a_wrong_pin_is_refused_in_plain_chinese(client, world):
    """Issue 10, wording: 手机号或 PIN 不正确 (not an English-sounding "details do not match")."""
    token = csrf_from(client, "/login")
    r = client.post("/login", data={"csrf_token": token, "phone": world.phones["pa"], "pin": "0000"},
                    headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 401
    assert "手机号或 PIN 不正确，请重新输入。" in r.get_data(as_text=True)


def test_an_unknown_number_and_a_wrong_pin_get_the_same_answer(app, client, world):
    wrong_pin = _login(client, world.phones["pa"], "0000")
    stranger = app.test_client()
    stranger.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    unknown = _login(stranger, world.phones["pa"].replace("1111", "9999"), "0000")
    assert unknown.status_code == wrong_pin.status_code == 401
    assert _without_tokens(unknown.get_data(as_text=True)) == _without_tokens(wrong_pin.get_data(as_text=True))


def test_the_sixth_pin_is_refused_even_when_right_after_five_wrong_ones(client, world):
    for attempt in range(1, 6):
        r = _login(client, world.phones["pa"], "0000")
        assert r.status_code == 401, attempt
    r = _login(client, world.phones["pa"], PIN)
    assert r.status_code == 401
    assert "Too many wrong attempts" in r.get_data(as_text=True)
    assert not _signed_in(client)


def test_the_right_pin_works_again_once_the_lock_expires(app, client, world, clock):
    for _ in range(5):
        _login(client, world.phones["pa"], "0000")
    clock.advance(minutes=app.config["LOGIN_LOCK_MINUTES"], seconds=-1)
    assert _login(client, world.phones["pa"], PIN).status_code == 401
    clock.advance(seconds=2)
    assert _login(client, world.phones["pa"], PIN).status_code == 302
    assert _signed_in(client)


def test_only_wrong_pins_in_a_row_lock_the_account(client, world):
    for _ in range(4):
        _login(client, world.phones["pa"], "0000")
    assert _login(client, world.phones["pa"], PIN).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    for _ in range(4):
        _login(client, world.phones["pa"], "0000")
    assert _login(client, world.phones["pa"], PIN).status_code == 302


def test_a_lock_on_one_participant_does_not_lock_another(client, world):
    for _ in range(5):
        _login(client, world.phones["pa"], "0000")
    assert _login(client, world.phones["pb"], PIN).status_code == 302


def test_a_withdrawn_participant_cannot_sign_in(client, world, session):
    p = _fresh(session, Participant, world.participants["pa"].id)
    p.status = "withdrawn"
    session.add(p)
    session.commit()
    r = _login(client, world.phones["pa"], PIN)
    assert r.status_code == 401
    assert not _signed_in(client)


def test_withdrawal_ends_a_participants_open_session(client, auth, world, session):
    auth.participant("pa")
    p = _fresh(session, Participant, world.participants["pa"].id)
    p.status = "withdrawn"
    session.add(p)
    session.commit()
    assert not _signed_in(client)


def test_signing_out_ends_the_participant_session_and_forgets_the_phone(client, auth):
    auth.participant("pa")
    client.post("/logout", data={"csrf_token": auth.csrf("/")})
    assert not _signed_in(client)


def test_sign_in_writes_an_audit_event(client, world, session):
    _login(client, world.phones["pa"], PIN)
    session.rollback()
    actor = f"participant:{world.participants['pa'].id}"
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.actor == actor)).all()
    assert actions == ["participant_signed_in"]


# --- forgot PIN -------------------------------------------------------------------------------


def test_forgot_pin_sends_a_six_digit_code_by_sms_through_the_outbox(app, client, world, session):
    r = _forgot(client, "138 0000 1111")
    assert r.status_code == 302 and r.headers["Location"] == "/pin/reset"
    session.rollback()
    # Queued by the request, sent by the outbox's dispatcher: one send path for every SMS.
    assert [m.status for m in session.exec(select(Message)).all()] == ["queued"]
    assert len(_sent_codes(app, world.phones["pa"])) == 1
    session.rollback()
    messages = session.exec(select(Message)).all()
    assert [(m.kind, m.participant_id, m.status) for m in messages] == [
        ("pin_reset", world.participants["pa"].id, "sent")]
    assert app.extensions["diary.cipher"].decrypt(messages[0].to_enc) == world.phones["pa"]


def test_forgot_pin_for_an_unknown_number_looks_the_same_and_sends_nothing(app, client, world, session):
    enrolled = _forgot(client, world.phones["pa"])
    enrolled_page = client.get(enrolled.headers["Location"]).get_data(as_text=True)
    stranger = app.test_client()
    stranger.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    unknown = _forgot(stranger, "+8613899998888")
    unknown_page = stranger.get(unknown.headers["Location"]).get_data(as_text=True)
    assert (unknown.status_code, unknown.headers["Location"]) == (enrolled.status_code, enrolled.headers["Location"])
    assert _without_tokens(unknown_page) == _without_tokens(enrolled_page)
    assert _sent_codes(app, "+8613899998888") == []
    session.rollback()
    assert len(session.exec(select(Message)).all()) == 1


def test_the_sms_code_sets_a_new_pin_and_signs_in(app, client, world):
    _forgot(client, world.phones["pa"])
    [code] = _sent_codes(app, world.phones["pa"])
    r = _reset(client, world.phones["pa"], code)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert _signed_in(client)
    other = app.test_client()
    assert _login(other, world.phones["pa"], PIN).status_code == 401
    assert _login(other, world.phones["pa"], NEW_PIN).status_code == 302


def test_asking_twice_for_a_code_sends_a_code_that_works(app, client, world):
    _forgot(client, world.phones["pa"])
    _forgot(client, world.phones["pa"])  # an impatient second tap, in the same second
    codes = _sent_codes(app, world.phones["pa"])
    assert codes
    assert _reset(client, world.phones["pa"], codes[-1]).status_code == 302


def test_an_sms_code_works_only_once(app, client, world):
    _forgot(client, world.phones["pa"])
    [code] = _sent_codes(app, world.phones["pa"])
    _reset(client, world.phones["pa"], code)
    other = app.test_client()
    assert _reset(other, world.phones["pa"], code, pin="11223").status_code == 401


def test_five_wrong_sms_codes_burn_the_code(app, client, world, clock):
    app.config["PIN_RESET_MINUTES"] = 120  # so that only the burning, not expiry, refuses it
    _forgot(client, world.phones["pa"])
    [code] = _sent_codes(app, world.phones["pa"])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        assert _reset(client, world.phones["pa"], wrong).status_code == 401
    clock.advance(minutes=app.config["LOGIN_LOCK_MINUTES"] + 1)
    r = _reset(client, world.phones["pa"], code)
    assert r.status_code == 401
    assert not _signed_in(client)


def test_an_expired_sms_code_is_refused(app, client, world, session, clock):
    _forgot(client, world.phones["pa"])
    [code] = _sent_codes(app, world.phones["pa"])
    clock.advance(minutes=app.config["PIN_RESET_MINUTES"], seconds=1)
    r = _reset(client, world.phones["pa"], code)
    assert r.status_code == 401
    assert "expired" in r.get_data(as_text=True)
    assert _login(app.test_client(), world.phones["pa"], PIN).status_code == 302


def test_a_pin_reset_signs_out_every_other_phone(app, client, auth, world):
    auth.participant("pa")
    assert _signed_in(client)
    phone = app.test_client()
    _forgot(phone, world.phones["pa"])
    [code] = _sent_codes(app, world.phones["pa"])
    _reset(phone, world.phones["pa"], code)
    assert _signed_in(phone)
    assert not _signed_in(client)


def test_a_pin_reset_signs_out_a_phone_that_kept_only_its_remember_cookie(app, client, auth, world):
    auth.participant("pa")
    client.delete_cookie("session")
    phone = app.test_client()
    _forgot(phone, world.phones["pa"])
    [code] = _sent_codes(app, world.phones["pa"])
    _reset(phone, world.phones["pa"], code)
    assert not _signed_in(client)


def test_a_withdrawn_participant_gets_no_sms_code(app, client, world, session):
    p = _fresh(session, Participant, world.participants["pa"].id)
    p.status = "withdrawn"
    session.add(p)
    session.commit()
    _forgot(client, world.phones["pa"])
    assert _sent_codes(app, world.phones["pa"]) == []


def test_a_page_left_open_all_morning_can_still_be_submitted(client, auth, monkeypatch):
    """The participant opens the diary at 07:00 and taps at 10:00: the CSRF token still holds."""
    import time

    from itsdangerous import TimestampSigner

    auth.participant("pa")
    token = auth.csrf("/")
    later = int(time.time()) + 3 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    r = client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
