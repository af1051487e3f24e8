"""Lock-out and one-time codes hold when many requests arrive at once (issue 11, items 1 and 2).

Each request runs in its own thread with its own test client (its own cookie jar and database
connection) against one file-backed SQLite database or one PostgreSQL database; a barrier
releases them together.
"""

from __future__ import annotations

import pyotp
import pytest
from sqlmodel import func, select

from diary.auth import services as auth_services
from diary.models import AuditEvent, Participant, StaffUser
from tests.conftest import PASSWORD, PIN
from tests.web.race_helpers import at_once, new_client

ATTEMPTS = 20


@pytest.fixture(autouse=True)
def without_csrf(app, client):
    # Each thread is a separate stranger; CSRF is tested elsewhere and would only add a page load.
    app.config["WTF_CSRF_ENABLED"] = False
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def events(session, *actions):
    session.expire_all()
    return session.exec(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.in_(actions))).one()


def test_concurrent_wrong_pins_lock_the_account_and_the_right_pin_is_then_refused(app, client, world, session):
    phone = world.phones["pa"]
    wrong = [f"{1000 + i:04d}" for i in range(ATTEMPTS)]
    answers = at_once(app, [lambda c, pin=pin: c.post("/login", data={"phone": phone, "pin": pin})
                            for pin in wrong])
    assert {r.status_code for r in answers} == {401}
    # Exactly the configured number of wrong PINs was ever checked: the rest met the lock.
    assert events(session, "sign_in_failed", "account_locked") == app.config["LOGIN_MAX_FAILURES"]
    assert events(session, "account_locked") == 1
    r = client.post("/login", data={"phone": phone, "pin": PIN})
    assert r.status_code == 401 and "Too many wrong attempts" in r.get_data(as_text=True)


def test_concurrent_wrong_passwords_lock_a_staff_account(app, client, world, session):
    email = "nurse_a@test.example"
    answers = at_once(app, [lambda c, i=i: c.post("/staff/login", data={"email": email, "password": f"wrong {i}"})
                            for i in range(ATTEMPTS)])
    assert {r.status_code for r in answers} == {401}
    assert events(session, "sign_in_failed", "account_locked") == app.config["LOGIN_MAX_FAILURES"]
    session.expire_all()
    assert session.get(StaffUser, world.staff["nurse_a"].id).locked_until is not None
    r = client.post("/staff/login", data={"email": email, "password": PASSWORD})
    assert r.status_code == 401 and "Too many wrong attempts" in r.get_data(as_text=True)


def _password_step(app, email):
    client = new_client(app)
    r = client.post("/staff/login", data={"email": email, "password": PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def test_concurrent_wrong_totp_codes_lock_the_staff_account(app, world, session, clock):
    email = "nurse_a@test.example"
    right = pyotp.TOTP(world.totp["nurse_a"]).at(clock.now)
    wrong = [c for c in (f"{i:06d}" for i in range(ATTEMPTS + 5)) if c != right][:ATTEMPTS]
    clients = [_password_step(app, email) for _ in range(ATTEMPTS)]
    answers = at_once(app, [lambda _c, k=k, code=code: k.post("/staff/login/code", data={"code": code})
                            for k, code in zip(clients, wrong, strict=True)])
    assert {r.status_code for r in answers} == {401}
    assert events(session, "sign_in_failed", "account_locked") == app.config["LOGIN_MAX_FAILURES"]
    r = clients[0].post("/staff/login/code", data={"code": right})
    assert r.status_code == 401


def test_one_totp_code_signs_in_once_however_many_send_it_at_once(app, world, session, clock):
    email = "nurse_a@test.example"
    code = pyotp.TOTP(world.totp["nurse_a"]).at(clock.now)
    clients = [_password_step(app, email) for _ in range(8)]
    answers = at_once(app, [lambda _c, k=k: k.post("/staff/login/code", data={"code": code}) for k in clients])
    assert sorted(r.status_code for r in answers) == [302] + [401] * 7
    assert events(session, "staff_signed_in") == 1


def test_one_activation_link_sets_one_pin_however_many_use_it_at_once(app, client, world, session, clock):
    participant = session.get(Participant, world.participants["pa"].id)
    token = auth_services.issue_activation(session, participant, world.staff["nurse_a"].id, clock.now,
                                           auth_services.Policy())
    session.commit()
    pins = [f"{5000 + i}" for i in range(8)]
    answers = at_once(app, [lambda c, pin=pin: c.post(f"/activate/{token}", data={"pin": pin, "pin_confirm": pin})
                            for pin in pins])
    assert sorted(r.status_code for r in answers) == [302] + [410] * 7
    assert events(session, "participant_activated") == 1
    winner = pins[[r.status_code for r in answers].index(302)]
    assert client.post("/login", data={"phone": world.phones["pa"], "pin": winner}).status_code == 302


def test_one_pin_reset_code_sets_one_pin_however_many_use_it_at_once(app, client, world, session, clock):
    with app.app_context():
        issued = auth_services.issue_pin_reset(session, world.phones["pa"], clock.now, auth_services.Policy(),
                                               app.extensions["diary.cipher"])
    session.commit()
    pins = [f"{6000 + i}" for i in range(8)]
    answers = at_once(app, [lambda c, pin=pin: c.post("/pin/reset", data={
        "phone": world.phones["pa"], "code": issued.code, "pin": pin, "pin_confirm": pin}) for pin in pins])
    assert sorted(r.status_code for r in answers) == [302] + [401] * 7
    assert events(session, "pin_reset") == 1
    winner = pins[[r.status_code for r in answers].index(302)]
    assert client.post("/login", data={"phone": world.phones["pa"], "pin": winner}).status_code == 302
