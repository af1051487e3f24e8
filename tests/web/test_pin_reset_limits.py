"""'Forgot PIN' cannot be used to flood a phone or pump SMS (issue 11, item 6).

Limits: PIN_RESET_PER_HOUR codes per phone per hour, PIN_RESET_PER_DAY per day, and
ANONYMOUS_SMS_PER_HOUR texts triggered without signing in across the whole site; the answer is
the same, after the same minimum time, whatever happened."""

from __future__ import annotations

import re
import time

import pytest
from sqlmodel import select

from diary.models import Message
from diary.services import enrolment
from tests.web.race_helpers import at_once, dispatch_outbox, new_client


@pytest.fixture(autouse=True)
def setup(app, client):
    app.config["WTF_CSRF_ENABLED"] = False
    app.config["FORGOT_PIN_RESPONSE_SECONDS"] = 0.05
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def forgot(client, phone):
    return client.post("/pin/forgot", data={"phone": phone})


def codes_queued(session, participant_id=None):
    session.rollback()
    query = select(Message).where(Message.kind == "pin_reset")
    if participant_id is not None:
        query = query.where(Message.participant_id == participant_id)
    return len(session.exec(query).all())


def test_a_phone_gets_at_most_three_codes_an_hour(app, client, world, session, clock):
    for _ in range(5):
        assert forgot(client, world.phones["pa"]).status_code == 302
    assert codes_queued(session) == app.config["PIN_RESET_PER_HOUR"] == 3
    clock.advance(minutes=61)
    forgot(client, world.phones["pa"])
    assert codes_queued(session) == 4


def test_a_phone_gets_at_most_ten_codes_a_day(app, client, world, session, clock):
    for _ in range(6):
        for _ in range(3):
            forgot(client, world.phones["pa"])
        clock.advance(minutes=61)
    assert codes_queued(session) == app.config["PIN_RESET_PER_DAY"] == 10
    clock.advance(hours=24)
    forgot(client, world.phones["pa"])
    assert codes_queued(session) == 11


def test_simultaneous_requests_for_one_phone_send_no_more_than_the_hourly_limit(app, world, session):
    answers = at_once(app, [lambda c: forgot(c, world.phones["pa"])] * 12)
    assert {r.status_code for r in answers} == {302}
    assert codes_queued(session) == 3


def test_the_site_wide_ceiling_holds_for_many_numbers_at_once(app, world, session, clock):
    app.config["ANONYMOUS_SMS_PER_HOUR"] = 4
    cipher = app.extensions["diary.cipher"]
    phones = [f"+86138000033{i:02d}" for i in range(8)]
    for i, phone in enumerate(phones):
        enrolment.enroll(session, cipher, site_id=world.sites["A"].id, study_number=f"X{i}", cohort="primary",
                         phone=phone, staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    answers = at_once(app, [lambda c, p=p: forgot(c, p) for p in phones])
    assert {r.status_code for r in answers} == {302}
    assert codes_queued(session) == 4
    clock.advance(hours=1)
    forgot(new_client(app), phones[0])
    assert codes_queued(session) == 5


def _page(client, response):
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    html = re.sub(r'"X-CSRFToken": "[^"]*"', '"X-CSRFToken": ""', html)  # per-session tokens
    return re.sub(r'value="[^"]*"', 'value=""', html)


def test_enrolled_unknown_and_over_the_limit_get_the_same_answer_after_the_same_minimum_time(app, world, session):
    app.config["FORGOT_PIN_RESPONSE_SECONDS"] = 0.3
    for _ in range(3):
        forgot(new_client(app), world.phones["pa"])
    answers = {}
    for name, phone in (("enrolled", world.phones["pb"]), ("unknown", "+8613899998888"),
                        ("over the limit", world.phones["pa"])):
        client = new_client(app)
        started = time.monotonic()
        r = forgot(client, phone)
        elapsed = time.monotonic() - started
        assert elapsed >= 0.3, name
        answers[name] = (r.status_code, r.headers["Location"], _page(client, r))
    assert answers["enrolled"] == answers["unknown"] == answers["over the limit"]
    assert codes_queued(session) == 4


def test_the_code_reaches_the_phone_through_the_dispatcher_even_at_night_and_after_opt_out(
        app, client, world, session, clock):
    participant = session.get(type(world.participants["pa"]), world.participants["pa"].id)
    participant.sms_opt_in = False
    session.add(participant)
    session.commit()
    clock.advance(hours=14)  # 23:00 in Shanghai: quiet hours
    forgot(client, world.phones["pa"])
    gateway = app.extensions.get("diary.gateway")
    assert not getattr(gateway, "sent", [])
    dispatch_outbox(app)
    sent = [body for to, body, _id in app.extensions["diary.gateway"].sent if to == world.phones["pa"]]
    assert len(sent) == 1 and re.search(r"\b\d{6}\b", sent[0])
