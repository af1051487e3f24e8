"""POST /sms/inbound and /sms/status: signed by Twilio or refused, and what a reply does."""

from datetime import timedelta

import pytest
from sqlmodel import select

from diary.models import AuditEvent, DoseLog, Flag, InboundMessage, Message

INBOUND = "http://localhost/sms/inbound"


@pytest.fixture
def reply(client, twilio, world, gateway):
    """Post a signed incoming SMS from a participant; returns (response, MessageSid)."""

    def send(body: str, key: str = "pa", *, from_: str | None = None):
        form, headers = twilio.inbound_request(INBOUND, from_ or world.phones[key], body)
        return client.post("/sms/inbound", data=form, headers=headers), form["MessageSid"]

    return send


def sent_reminder(session, world, clock, day: int, *, hours_ago: float = 1) -> Message:
    """A dose reminder for course day `day` that reached participant PA `hours_ago` hours ago."""
    p, course = world.participants["pa"], world.courses["pa"]
    message = Message(dedupe_key=f"dose:{course.id}:{day}", kind="dose", site_id=p.site_id, participant_id=p.id,
                      to_enc=p.phone_enc, body="reminder", status="delivered",
                      not_before=clock.now - timedelta(hours=hours_ago), sent_at=clock.now - timedelta(hours=hours_ago),
                      course_id=course.id, course_day=day, created_at=clock.now - timedelta(hours=hours_ago))
    session.add(message)
    session.commit()
    return message


@pytest.fixture
def asked_today(session, world, clock):
    """Today's (course day 3) reminder went out at 08:00; yesterday is still open until noon."""
    return sent_reminder(session, world, clock, 3)


def rows(session, model, *where):
    session.expire_all()
    return session.exec(select(model).where(*where)).all()


@pytest.mark.parametrize("body", ["1", " y ", "TAKEN", "taken", "已服", "已吃"])
def test_a_taken_reply_logs_todays_dose_through_the_sms_channel(reply, session, world, body, asked_today):
    response, sid = reply(body)

    assert response.status_code == 200 and "<Response></Response>" in response.get_data(as_text=True)
    [log] = rows(session, DoseLog, DoseLog.course_id == world.courses["pa"].id)
    assert (log.course_day, log.outcome, log.source, log.client_key) == (3, "taken", "sms", sid)


def test_a_taken_reply_is_answered_through_the_outbox(reply, session, asked_today):
    _, sid = reply("1")

    [answer] = rows(session, Message, Message.dedupe_key == f"reply:{sid}")
    assert answer.status == "queued" and "recorded" in answer.body


def test_twilio_retrying_the_webhook_logs_the_dose_once(client, twilio, world, gateway, session, asked_today):
    form, headers = twilio.inbound_request(INBOUND, world.phones["pa"], "1")
    for _ in range(3):
        assert client.post("/sms/inbound", data=form, headers=headers).status_code == 200

    assert len(rows(session, DoseLog)) == 1
    assert len(rows(session, InboundMessage)) == 1
    assert len(rows(session, Message, Message.kind == "reply")) == 1


def test_an_unsigned_request_is_refused_and_changes_nothing(client, twilio, world, gateway, session):
    form, _headers = twilio.inbound_request(INBOUND, world.phones["pa"], "1")

    assert client.post("/sms/inbound", data=form).status_code == 403
    assert rows(session, InboundMessage) == [] and rows(session, DoseLog) == []


def test_a_forged_request_is_refused_and_changes_nothing(client, twilio, world, gateway, session):
    form, headers = twilio.inbound_request(INBOUND, world.phones["pa"], "HELP")
    form["Body"] = "1"  # tampered after signing

    assert client.post("/sms/inbound", data=form, headers=headers).status_code == 403
    assert rows(session, InboundMessage) == [] and rows(session, DoseLog) == []


def test_the_signature_is_checked_against_the_public_url(app, client, twilio, world, gateway, session):
    app.config["PUBLIC_BASE_URL"] = "https://diary.example"
    form, headers = twilio.inbound_request(INBOUND, world.phones["pa"], "1")
    assert client.post("/sms/inbound", data=form, headers=headers).status_code == 403

    form, headers = twilio.inbound_request("https://diary.example/sms/inbound", world.phones["pa"], "1")
    assert client.post("/sms/inbound", data=form, headers=headers).status_code == 200


@pytest.mark.parametrize("word", ["STOP", "退订"])
def test_stop_opts_out_raises_a_flag_and_sends_nothing_back(reply, session, world, word):
    _, sid = reply(word)

    session.refresh(world.participants["pa"])
    assert world.participants["pa"].sms_opt_in is False
    assert [f.kind for f in rows(session, Flag, Flag.participant_id == world.participants["pa"].id)] == ["opt_out"]
    assert rows(session, AuditEvent, AuditEvent.action == "sms_opt_out")
    assert rows(session, Message, Message.kind == "reply") == []


def test_start_opts_back_in_and_says_so(reply, session, world):
    reply("STOP")
    _, sid = reply("start")

    session.refresh(world.participants["pa"])
    assert world.participants["pa"].sms_opt_in is True
    [answer] = rows(session, Message, Message.dedupe_key == f"reply:{sid}")
    assert "again" in answer.body


def test_help_answers_with_the_site_phone(reply, session, world):
    _, sid = reply("HELP")

    [answer] = rows(session, Message, Message.dedupe_key == f"reply:{sid}")
    assert world.sites["A"].phone in answer.body


def test_any_other_text_gets_a_short_help_reply_and_is_kept_for_staff(reply, session, world):
    _, sid = reply("I feel dizzy today")

    [kept] = rows(session, InboundMessage, InboundMessage.provider_sid == sid)
    assert (kept.body, kept.handled_as, kept.participant_id) == ("I feel dizzy today", "other",
                                                                world.participants["pa"].id)
    assert rows(session, Message, Message.dedupe_key == f"reply:{sid}")


def test_a_text_that_is_not_a_command_reaches_staff_as_a_flag_with_the_words(reply, session, world):
    # Issue 10, finding 13: "my nose won't stop bleeding" must not end at an automatic reply.
    _, sid = reply("流鼻血止不住")

    [flag] = rows(session, Flag, Flag.participant_id == world.participants["pa"].id)
    assert flag.kind == "participant_message" and "流鼻血止不住" in flag.detail
    [answer] = rows(session, Message, Message.dedupe_key == f"reply:{sid}")
    assert world.sites["A"].phone in answer.body and "120" in answer.body


def test_a_command_raises_no_message_flag(reply, session, world):
    reply("HELP")
    assert rows(session, Flag) == []


def test_an_unknown_number_gets_the_same_answer_and_learns_nothing(reply, session):
    known, _ = reply("HELP")
    unknown, sid = reply("HELP", from_="+8613711112222")

    assert unknown.status_code == known.status_code == 200
    assert unknown.get_data() == known.get_data()
    assert rows(session, Message, Message.dedupe_key == f"reply:{sid}") == []
    assert rows(session, DoseLog) == []


def test_a_reply_at_half_past_midnight_logs_the_dose_the_evening_reminder_asked_about(
        reply, session, world, clock):
    """Issue 9, problem 2: '1' at 00:30 means last night's dose, not today's."""
    clock.now = clock.now + timedelta(hours=15, minutes=30)  # 00:30 on course day 4
    sent_reminder(session, world, clock, 3, hours_ago=4)  # day 3's follow-up, at 20:30
    _, sid = reply("1")

    [log] = rows(session, DoseLog, DoseLog.course_id == world.courses["pa"].id)
    assert (log.course_day, log.client_key) == (3, sid)
    [answer] = rows(session, Message, Message.dedupe_key == f"reply:{sid}")
    assert "12/1" in answer.body and "recorded" in answer.body


def test_a_reply_for_a_day_already_recorded_goes_to_today(app, reply, session, world, clock):
    """The reminder asked about day 2, but day 2 is recorded: the reply is today's."""
    from diary.services import dosing

    cfg = app.extensions["diary.study"]
    dosing.log_dose(session, cfg, participant=world.participants["pa"], course_id=world.courses["pa"].id, day=2,
                    outcome="taken", client_key="d2", source="participant", now=clock.now,
                    taken_at=clock.now - timedelta(hours=10))
    session.commit()
    sent_reminder(session, world, clock, 2, hours_ago=13)
    reply("1")
    assert sorted(log.course_day for log in rows(session, DoseLog)) == [2, 3]


def test_with_yesterday_and_today_open_and_no_reminder_the_reply_asks_which_day(reply, session, world):
    _, sid = reply("1")

    assert rows(session, DoseLog) == []
    [answer] = rows(session, Message, Message.dedupe_key == f"reply:{sid}")
    assert "TODAY" in answer.body and "YESTERDAY" in answer.body and "12/1" in answer.body


@pytest.mark.parametrize(("body", "day"), [("YESTERDAY", 2), ("today", 3), ("昨天", 2), ("今天", 3)])
def test_answering_which_day_logs_that_day(reply, session, world, body, day):
    reply("1")
    reply(body)

    [log] = rows(session, DoseLog)
    assert log.course_day == day


def test_a_withdrawn_participants_reply_logs_nothing(reply, session, world):
    world.participants["pa"].status = "withdrawn"
    session.add(world.participants["pa"])
    session.commit()

    reply("1")

    assert rows(session, DoseLog) == [] and rows(session, Message, Message.kind == "reply") == []


# --- delivery status ------------------------------------------------------------------------


@pytest.fixture
def sent_message(app, sms, world, twilio):
    """A dose reminder sent with a status callback to this app."""
    app.config["PUBLIC_BASE_URL"] = "http://localhost"
    sms.tick()
    [message] = [m for m in sms.outbox() if m.participant_id == world.participants["pa"].id]
    return message


def post_status(client, twilio, sid, status, error_code=None):
    url, form, headers = twilio.status_callback_request(sid, status, error_code)
    return client.post(url.removeprefix("http://localhost"), data=form, headers=headers)


def test_a_delivery_report_marks_the_message_delivered(client, twilio, sent_message, session):
    assert post_status(client, twilio, sent_message.provider_id, "delivered").status_code == 200

    session.expire_all()
    assert session.get(Message, sent_message.id).status == "delivered"


@pytest.mark.parametrize("status", ["undelivered", "failed"])
def test_an_undeliverable_message_raises_a_flag(client, twilio, sent_message, session, status):
    post_status(client, twilio, sent_message.provider_id, status, error_code=30005)

    session.expire_all()
    message = session.get(Message, sent_message.id)
    assert message.status == status and "unknown destination handset" in message.last_error
    assert [f.kind for f in rows(session, Flag, Flag.key == f"sms_failed:{message.id}")] == ["sms_failed"]


def test_a_late_sent_report_does_not_undo_delivered(client, twilio, sent_message, session):
    post_status(client, twilio, sent_message.provider_id, "delivered")
    post_status(client, twilio, sent_message.provider_id, "sent")

    session.expire_all()
    assert session.get(Message, sent_message.id).status == "delivered"


def test_an_unsigned_delivery_report_is_refused_and_changes_nothing(client, twilio, sent_message, session):
    url, form, _headers = twilio.status_callback_request(sent_message.provider_id, "failed", 30005)

    assert client.post(url.removeprefix("http://localhost"), data=form).status_code == 403
    session.expire_all()
    assert session.get(Message, sent_message.id).status == "sent"
