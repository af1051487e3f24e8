"""Staff sign-in: password, then a TOTP code; lockout, enrolment of the second factor, idle timeout."""

from __future__ import annotations

import pyotp
import pytest
from sqlmodel import select

from diary.models import AuditEvent, StaffUser
from tests.conftest import PASSWORD, csrf_from


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def _password(client, key, password=PASSWORD, url="/staff/login"):
    token = csrf_from(client, url)
    return client.post(url, data={"csrf_token": token, "email": f"{key}@test.example", "password": password})


def _code(client, code, url="/staff/login/code"):
    token = csrf_from(client, url)
    return client.post(url, data={"csrf_token": token, "code": code})


def _now_code(world, clock, key="nurse_a"):
    return pyotp.TOTP(world.totp[key]).at(clock.now)


def _signed_in(client) -> bool:
    return client.get("/staff/").status_code == 200


def _fresh(session, model, pk):
    session.rollback()
    session.expire_all()  # forget what this session cached; read what the app committed
    return session.get(model, pk)


def _events(session, action):
    session.rollback()
    session.expire_all()
    return session.exec(select(AuditEvent).where(AuditEvent.action == action)).all()


def _drop_totp(session, world, key):
    staff = _fresh(session, StaffUser, world.staff[key].id)
    staff.totp_secret_enc = None
    session.add(staff)
    session.commit()


def test_password_and_authenticator_code_sign_staff_in(client, world, clock):
    assert _password(client, "nurse_a").headers["Location"].startswith("/staff/login/code")
    r = _code(client, _now_code(world, clock))
    assert r.status_code == 302 and r.headers["Location"] == "/staff/"
    assert _signed_in(client)


def test_a_wrong_password_is_refused_with_a_message_and_an_audit_event(client, world, session):
    r = _password(client, "nurse_a", "wrong password!")
    assert r.status_code == 401
    assert "The e-mail address or password is not right." in r.get_data(as_text=True)
    events = _events(session, "sign_in_failed")
    assert [(e.actor, e.after["what"]) for e in events] == [(f"staff:{world.staff['nurse_a'].id}", "password")]
    assert not _signed_in(client)


def test_an_unknown_email_gets_the_same_refusal_as_a_wrong_password(client, world):
    unknown = _password(client, "nobody")
    wrong = _password(client, "nurse_a", "wrong password!")
    assert unknown.status_code == wrong.status_code == 401
    assert "The e-mail address or password is not right." in unknown.get_data(as_text=True)


def test_a_wrong_authenticator_code_is_refused(client, world, clock):
    _password(client, "nurse_a")
    right = _now_code(world, clock)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    r = _code(client, wrong)
    assert r.status_code == 401
    assert not _signed_in(client)


def test_an_authenticator_code_cannot_be_used_twice(app, client, world, clock):
    code = _now_code(world, clock)
    _password(client, "nurse_a")
    assert _code(client, code).status_code == 302
    # Someone who saw the code over the nurse's shoulder, in the same 30 seconds.
    other = app.test_client()
    other.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    _password(other, "nurse_a")
    assert _code(other, code).status_code == 401
    assert not _signed_in(other)


def test_the_next_authenticator_code_works_after_one_was_used(app, client, world, clock):
    _password(client, "nurse_a")
    _code(client, _now_code(world, clock))
    clock.advance(seconds=30)
    other = app.test_client()
    _password(other, "nurse_a")
    assert _code(other, _now_code(world, clock)).status_code == 302


def test_staff_without_a_second_factor_must_set_one_up(client, world, session):
    _drop_totp(session, world, "investigator_a")
    r = _password(client, "investigator_a")
    assert r.headers["Location"].startswith("/staff/login/setup-code")
    page = client.get(r.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<svg" in html and "<img" not in html  # drawn by the server, no external QR service
    assert not _signed_in(client)


def test_confirming_the_new_authenticator_stores_the_secret_encrypted_and_signs_in(app, client, world, session, clock):
    _drop_totp(session, world, "investigator_a")
    _password(client, "investigator_a")
    client.get("/staff/login/setup-code")
    with client.session_transaction() as s:
        secret = s["totp_setup_secret"]
    r = _code(client, pyotp.TOTP(secret).at(clock.now), url="/staff/login/setup-code")
    assert r.status_code == 302 and r.headers["Location"] == "/staff/"
    staff = _fresh(session, StaffUser, world.staff["investigator_a"].id)
    assert secret not in staff.totp_secret_enc
    assert app.extensions["diary.cipher"].decrypt(staff.totp_secret_enc) == secret
    assert _signed_in(client)


def test_a_wrong_code_during_set_up_stores_no_secret(client, world, session, clock):
    _drop_totp(session, world, "investigator_a")
    _password(client, "investigator_a")
    client.get("/staff/login/setup-code")
    with client.session_transaction() as s:
        right = pyotp.TOTP(s["totp_setup_secret"]).at(clock.now)
    r = _code(client, f"{(int(right) + 1) % 10**6:06d}", url="/staff/login/setup-code")
    assert r.status_code == 401
    assert _fresh(session, StaffUser, world.staff["investigator_a"].id).totp_secret_enc is None


def test_without_mandatory_totp_the_password_alone_signs_in(app, client, world, session):
    app.config["STAFF_TOTP_REQUIRED"] = False
    _drop_totp(session, world, "investigator_a")
    r = _password(client, "investigator_a")
    assert r.status_code == 302 and r.headers["Location"] == "/staff/"
    assert _signed_in(client)


def test_without_mandatory_totp_an_enrolled_authenticator_is_still_asked_for(app, client, world):
    app.config["STAFF_TOTP_REQUIRED"] = False
    r = _password(client, "nurse_a")
    assert r.headers["Location"].startswith("/staff/login/code")
    assert not _signed_in(client)


def test_the_fifth_wrong_password_locks_the_account(client, world, session):
    for _ in range(4):
        assert "is not right" in _password(client, "nurse_a", "wrong password!").get_data(as_text=True)
    r = _password(client, "nurse_a", "wrong password!")
    assert r.status_code == 401
    assert "Too many wrong attempts" in r.get_data(as_text=True)
    assert len(_events(session, "account_locked")) == 1


def test_a_locked_account_refuses_the_right_password(client, world, clock):
    for _ in range(5):
        _password(client, "nurse_a", "wrong password!")
    r = _password(client, "nurse_a")
    assert r.status_code == 401
    assert "Too many wrong attempts" in r.get_data(as_text=True)
    assert not _signed_in(client)


def test_a_locked_account_signs_in_again_once_the_lock_expires(app, client, world, clock):
    for _ in range(5):
        _password(client, "nurse_a", "wrong password!")
    clock.advance(minutes=app.config["LOGIN_LOCK_MINUTES"] - 1)
    assert _password(client, "nurse_a").status_code == 401
    clock.advance(minutes=2)
    assert _password(client, "nurse_a").status_code == 302
    assert _code(client, _now_code(world, clock)).status_code == 302
    assert _signed_in(client)


def test_wrong_authenticator_codes_count_towards_the_lock(app, client, world, clock):
    _password(client, "nurse_a")
    right = _now_code(world, clock)
    for _ in range(5):
        _code(client, f"{(int(right) + 1) % 10**6:06d}")
    r = _code(client, right)
    assert r.status_code == 401
    assert not _signed_in(client)


def test_a_password_step_older_than_five_minutes_must_start_again(client, world, clock):
    _password(client, "nurse_a")
    token = csrf_from(client, "/staff/login/code")
    clock.advance(minutes=5, seconds=1)
    r = client.post("/staff/login/code", data={"csrf_token": token, "code": _now_code(world, clock)})
    assert r.status_code == 302 and r.headers["Location"] == "/staff/login"
    assert not _signed_in(client)


def test_a_password_step_within_five_minutes_is_still_good(client, world, clock):
    _password(client, "nurse_a")
    clock.advance(minutes=4, seconds=50)
    assert _code(client, _now_code(world, clock)).headers["Location"] == "/staff/"


def test_an_idle_staff_session_is_signed_out(app, client, auth, clock):
    auth.staff("nurse_a")
    clock.advance(seconds=app.config["STAFF_IDLE_TIMEOUT"].total_seconds() + 60)
    r = client.get("/staff/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login")
    # Coming back does not restore it.
    assert client.get("/staff/").status_code == 302


def test_a_staff_session_in_use_does_not_time_out(app, client, auth, clock):
    auth.staff("nurse_a")
    idle = app.config["STAFF_IDLE_TIMEOUT"].total_seconds()
    for _ in range(3):
        clock.advance(seconds=idle * 2 / 3)
        assert client.get("/staff/").status_code == 200


def test_a_deactivated_staff_members_open_session_ends(client, auth, world, session):
    auth.staff("nurse_a")
    staff = _fresh(session, StaffUser, world.staff["nurse_a"].id)
    staff.is_active = False
    session.add(staff)
    session.commit()
    r = client.get("/staff/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login")


def test_a_deactivated_staff_member_cannot_sign_in(client, world, session):
    staff = _fresh(session, StaffUser, world.staff["nurse_a"].id)
    staff.is_active = False
    session.add(staff)
    session.commit()
    r = _password(client, "nurse_a")
    assert r.status_code == 401
    assert not _signed_in(client)


def test_signing_out_ends_the_staff_session(client, auth):
    auth.staff("nurse_a")
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    assert not _signed_in(client)


@pytest.mark.parametrize("target", [
    "//evil.example/",
    "https://evil.example/",
    "/\\evil.example/",
    "/\t/evil.example/",
    "javascript:alert(1)",
])
def test_sign_in_never_redirects_to_another_site(client, world, clock, target):
    token = csrf_from(client, "/staff/login")
    r = client.post("/staff/login", query_string={"next": target},
                    data={"csrf_token": token, "email": "nurse_a@test.example", "password": PASSWORD})
    code_url = r.headers["Location"]
    token = csrf_from(client, code_url)
    r = client.post(code_url, data={"csrf_token": token, "code": _now_code(world, clock)})
    assert r.status_code == 302
    assert r.headers["Location"] == "/staff/"


def test_sign_in_returns_to_the_page_that_asked_for_it(client, world, clock):
    page = f"/staff/participants/{world.participants['pa'].id}"
    login_url = client.get(page).headers["Location"]
    token = csrf_from(client, login_url)
    r = client.post(login_url, data={"csrf_token": token, "email": "nurse_a@test.example", "password": PASSWORD})
    code_url = r.headers["Location"]
    r = client.post(code_url, data={"csrf_token": csrf_from(client, code_url), "code": _now_code(world, clock)})
    assert r.headers["Location"].startswith(page)
