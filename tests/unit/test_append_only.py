"""Clinical and audit rows are never changed in place or deleted through the app's ORM."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, update
from sqlmodel import Session, select

from diary.db import AppendOnlyError
from diary.models import AuditEvent, DoseLog, LabResult
from diary.services import dosing, labs


@pytest.fixture
def dose_log(app, session, world, clock) -> DoseLog:
    course = world.courses["pa"]
    log = dosing.log_dose(
        session, app.extensions["diary.study"], participant=world.participants["pa"], course_id=course.id,
        day=3, outcome="taken", taken_at=clock.now - timedelta(minutes=30), client_key="append-only-test",
        source="participant", now=clock.now)
    session.commit()
    return log


@pytest.fixture
def lab_result(app, session, world, clock) -> LabResult:
    course = world.courses["pa"]
    lab = labs.record_lab(session, app.extensions["diary.study"], course=course, course_day=3,
                          drawn_on=course.start_date + timedelta(days=2), plt=88.0,
                          staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    return lab


@pytest.fixture
def audit_event(session, world) -> AuditEvent:
    return session.exec(select(AuditEvent).order_by(AuditEvent.id)).first()


CHANGES = {
    "dose_log": ("note", "changed later"),
    "lab_result": ("plt", 150.0),
    "audit_event": ("actor", "staff:999"),
}


def _stored(app, row):
    """The row as the database has it, read in a session of its own."""
    with Session(app.extensions["diary.engine"]) as s:
        return s.get(type(row), row.id).model_dump()


@pytest.mark.parametrize("kind", CHANGES)
def test_changing_a_row_in_place_is_refused_and_the_row_stays(app, session, request, kind):
    row = request.getfixturevalue(kind)
    stored = _stored(app, row)
    field, value = CHANGES[kind]
    setattr(row, field, value)
    session.add(row)
    with pytest.raises(AppendOnlyError):
        session.commit()
    session.rollback()
    assert _stored(app, row) == stored


@pytest.mark.parametrize("kind", CHANGES)
def test_deleting_a_row_is_refused_and_the_row_stays(app, session, request, kind):
    row = request.getfixturevalue(kind)
    stored = _stored(app, row)
    session.delete(row)
    with pytest.raises(AppendOnlyError):
        session.commit()
    session.rollback()
    assert _stored(app, row) == stored


@pytest.mark.parametrize("kind", CHANGES)
def test_a_bulk_update_through_the_orm_is_refused_and_the_row_stays(app, session, request, kind):
    row = request.getfixturevalue(kind)
    stored = _stored(app, row)
    field, value = CHANGES[kind]
    with pytest.raises(AppendOnlyError):
        session.exec(update(type(row)).where(type(row).id == row.id).values({field: value}))
    session.rollback()
    assert _stored(app, row) == stored


@pytest.mark.parametrize("kind", CHANGES)
def test_a_bulk_delete_through_the_orm_is_refused_and_the_row_stays(app, session, request, kind):
    row = request.getfixturevalue(kind)
    stored = _stored(app, row)
    with pytest.raises(AppendOnlyError):
        session.exec(delete(type(row)).where(type(row).id == row.id))
    session.rollback()
    assert _stored(app, row) == stored


def test_a_correction_is_a_new_row_that_supersedes_the_old(app, session, world, clock, dose_log):
    correction = dosing.log_dose(
        session, app.extensions["diary.study"], participant=world.participants["pa"],
        course_id=world.courses["pa"].id, day=3, outcome="not_taken", reason="vomited",
        client_key="append-only-correction", source="staff", staff_id=world.staff["nurse_a"].id,
        correction_reason="phoned in", now=clock.now)
    session.commit()
    assert correction.supersedes_id == dose_log.id
    assert _stored(app, dose_log)["outcome"] == "taken"


def test_other_rows_may_still_change(session, world):
    from diary.models import Participant

    participant = session.get(Participant, world.participants["pa"].id)
    participant.reminder_time = "09:30"
    session.add(participant)
    session.commit()
    session.exec(update(Participant).where(Participant.id == participant.id).values(reminder_time="10:00"))
    session.commit()
