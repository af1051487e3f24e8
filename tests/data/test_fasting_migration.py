"""Migration 9d4e2b7c1a30: fasting True/False becomes 'yes'/'no', and the audit trail still verifies
the rows fingerprinted in their boolean form (issue 10, item 11)."""

from __future__ import annotations

from sqlalchemy import select as sa_select
from sqlalchemy import text

from diary import audit, migrate
from diary.models import DoseLog
from diary.services import dosing

BEFORE = "3b9e4c7d1a20"  # the revision before 9d4e2b7c1a30


def _log(session, app, world, clock, day: int, fasting: str | None) -> int:
    log = dosing.log_dose(session, app.extensions["diary.study"], participant=world.participants["pa"],
                          course_id=world.courses["pa"].id, day=day, outcome="taken", client_key=f"m-{day}",
                          source="staff", staff_id=world.staff["nurse_a"].id, correction_reason="test",
                          now=clock.now, taken_at=clock.now, fasting=fasting)
    session.commit()
    return log.id


def _fasting(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(text("SELECT fasting FROM doselog ORDER BY course_day")).scalars().all()


def test_the_upgrade_turns_true_into_yes_and_false_into_no(app, session, world, clock):
    for day, answer in ((1, "yes"), (2, "no"), (3, None)):
        _log(session, app, world, clock, day, answer)
    session.close()
    engine = app.extensions["diary.engine"]
    migrate.downgrade(engine, BEFORE)
    assert [None if v is None else bool(v) for v in _fasting(engine)] == [True, False, None]
    migrate.upgrade(engine)
    assert _fasting(engine) == ["yes", "no", None]


def test_a_row_fingerprinted_as_true_still_verifies_as_yes_and_any_other_change_is_found(
        app, session, world, clock):
    row_id = _log(session, app, world, clock, 1, "yes")
    table = DoseLog.__table__
    with app.app_context():
        row = dict(session.execute(sa_select(table).where(table.c.id == row_id)).mappings().one())
        # What an event written before the migration fingerprinted: the boolean column's True.
        before = audit.row_fingerprint({**row, "fasting": True})
        assert audit.row_matches("DoseLog", row, before)
        assert not audit.row_matches("DoseLog", {**row, "fasting": "no"}, before)
        assert not audit.row_matches("DoseLog", {**row, "fasting": "yes", "course_day": 2}, before)
