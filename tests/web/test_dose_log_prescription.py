"""Issue 10, item 9: each dose log keeps the prescription in force when it was recorded."""

from sqlmodel import select

from diary.models import DoseLog
from diary.services import decisions, dosing


def test_a_later_decision_does_not_change_what_a_past_log_meant(app, session, world, clock):
    cfg = app.extensions["diary.study"]
    pa, course = world.participants["pa"], world.courses["pa"]
    dosing.log_dose(session, cfg, participant=pa, course_id=course.id, day=3, outcome="taken", client_key="day3-5mg",
                    source="participant", now=clock.now, taken_at=clock.now)
    # From today (day 3), the day already logged: a change can no longer reach back to earlier days.
    decisions.sign_decision(session, cfg, course=course, signer=world.staff["investigator_a"], effective_day=3,
                            dose_mg=7.5, current_dose_mg=5, now=clock.now)
    session.commit()
    session.expire_all()
    log = session.exec(select(DoseLog).where(DoseLog.client_key == "day3-5mg")).one()
    assert (log.dose_mg, log.tablets) == (5.0, 2)
