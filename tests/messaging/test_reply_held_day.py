"""An SMS "1" on a held day records the tablets taken anyway and tells staff (issue 10, item 10)."""

import pytest
from sqlmodel import select

from diary.models import DoseDecision, DoseLog, Flag, Message
from diary.services import dosing

INBOUND = "http://localhost/sms/inbound"


@pytest.fixture
def held_today(app, session, world, clock):
    """PA's day 3 (today) is held; day 2 is already recorded, so today is the only open day."""
    course = world.courses["pa"]
    session.add(DoseDecision(course_id=course.id, effective_day=3, dose_mg=0, action="hold",
                             decided_by=world.staff["investigator_a"].id))
    session.commit()
    dosing.log_dose(session, app.extensions["diary.study"], participant=world.participants["pa"], course_id=course.id,
                    day=2, outcome="not_taken", reason="forgot", client_key="day-2", source="participant",
                    now=clock.now)
    session.commit()


@pytest.mark.usefixtures("held_today")
def test_a_taken_reply_on_a_held_day_is_recorded_and_flagged(client, twilio, gateway, world, session):
    form, headers = twilio.inbound_request(INBOUND, world.phones["pa"], "1")
    assert client.post("/sms/inbound", data=form, headers=headers).status_code == 200
    session.expire_all()
    log = session.exec(select(DoseLog).where(DoseLog.course_day == 3)).one()
    assert (log.outcome, log.source, log.dose_mg, log.tablets) == ("taken", "sms", 0, 0)
    assert session.exec(select(Flag).where(Flag.kind == "dose_on_held_day")).one()
    reply = session.exec(select(Message).where(Message.dedupe_key == f"reply:{form['MessageSid']}")).one()
    assert "recorded" in reply.body
