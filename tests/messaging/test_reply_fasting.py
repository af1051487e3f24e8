"""An SMS "taken" reply may say whether the dose was taken on an empty stomach (issue 10, item 11)."""

from datetime import timedelta

import pytest
from sqlmodel import select

from diary.messaging import texts
from diary.models import DoseLog, Message

INBOUND = "http://localhost/sms/inbound"


@pytest.fixture
def reply(client, twilio, world, gateway, session, clock):
    """A signed reply from PA to today's 08:00 reminder (course day 3)."""
    p, course = world.participants["pa"], world.courses["pa"]
    sent = clock.now - timedelta(hours=1)
    session.add(Message(dedupe_key=f"dose:{course.id}:3", kind="dose", site_id=p.site_id, participant_id=p.id,
                        to_enc=p.phone_enc, body="reminder", status="delivered", not_before=sent, sent_at=sent,
                        course_id=course.id, course_day=3, created_at=sent))
    session.commit()

    def send(body: str):
        form, headers = twilio.inbound_request(INBOUND, world.phones["pa"], body)
        assert client.post("/sms/inbound", data=form, headers=headers).status_code == 200
        session.expire_all()
        return session.exec(select(DoseLog)).all()

    return send


@pytest.mark.parametrize(("body", "fasting"), [
    ("1", None), ("1 F", "yes"), ("1f", "yes"), ("1 空腹", "yes"), ("已服 空腹", "yes"),
    ("1 NF", "no"), ("1 非空腹", "no"), ("1 ?", "unsure"), ("1 不确定", "unsure")])
def test_a_taken_reply_carries_the_empty_stomach_answer_where_given(reply, body, fasting):
    [log] = reply(body)
    assert (log.course_day, log.outcome, log.source, log.fasting) == (3, "taken", "sms", fasting)


@pytest.mark.parametrize("body", ["F", "空腹", "2 F"])
def test_an_answer_without_a_taken_reply_logs_nothing(reply, body):
    assert reply(body) == []


@pytest.mark.any_db
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_help_text_documents_the_reply(app, lang):
    with app.app_context():
        text = texts.reply_help(lang, phone="+86-591-0000-0000")
    assert ("1 F" in text) if lang == "en" else ("1 空腹" in text)
