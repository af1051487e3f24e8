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


def test_what_a_check_off_shows_next_is_what_a_fresh_read_of_the_course_says(app, session, world, clock):
    """A check-off renders the next card from the record it wrote against plus its own log
    (course_record.with_log), not from a second read: the two must be the same record, whatever was
    written (taken, undo, not taken, a staff correction of a retraction)."""
    from diary.services.course_records import load_record

    cfg = app.extensions["diary.study"]
    pa, course = world.participants["pa"], world.courses["pa"]
    steps = [("taken", "participant", 3), ("retracted", "participant", 3), ("not_taken", "participant", 3),
             ("taken", "participant", 2), ("taken", "staff", 3), ("not_taken", "staff", 1)]
    for n, (outcome, source, day) in enumerate(steps):
        clock.advance(minutes=1)
        staff = source == "staff"
        logged = dosing.record_dose(
            session, cfg, participant=pa, course_id=course.id, day=day, outcome=outcome, client_key=f"next-{n}",
            source=source, now=clock.now, reason="forgot" if outcome == "not_taken" else None,
            staff_id=world.staff["nurse_a"].id if staff else None,
            correction_reason="paper diary" if staff else None)
        assert logged.record == load_record(session, course.id), (outcome, source, day)
