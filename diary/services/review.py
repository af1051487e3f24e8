"""Clinical-review pauses (DESIGN §3): opened by a danger symptom or a critical PLT, closed by staff.

The software never changes a dose by itself, but it must not contradict its own danger screen:
while a pause is open the participant is told to wait for the study team's call before taking the
study tablets, and dose reminders stop. Staff close it in one step: "continue dosing" with a note,
or by signing a dose decision. Acknowledging the flag that came with it does not close it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit, study
from diary.models import Course, Participant, ReviewPause
from diary.study import StudyConfig


class PauseError(ValueError):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _course_to_pause(session: Session, participant: Participant, cfg: StudyConfig, now: datetime) -> Course | None:
    """The course running today, else the next one (so it does not start before the call)."""
    today = study.local_date(now, participant.timezone)
    last_start = today - timedelta(days=cfg.course_length_days - 1)
    return session.exec(
        select(Course).where(Course.participant_id == participant.id, Course.start_date >= last_start)
        .order_by(Course.start_date)).first()


def open_pause(session: Session, cfg: StudyConfig, *, participant: Participant, cause: str, flag_key: str | None,
               now: datetime) -> ReviewPause | None:
    """Open a review pause on the participant's running (or next) course; the pause already open
    if there is one; None when no course is running or coming."""
    course = _course_to_pause(session, participant, cfg, now)
    if course is None:
        return None
    pause = ReviewPause(course_id=course.id, participant_id=participant.id, site_id=participant.site_id,
                        cause=cause, flag_key=flag_key, opened_at=now)
    try:
        with session.begin_nested():
            session.add(pause)
    except IntegrityError:
        # One is open already (uq_reviewpause_open): this report joins it.
        return open_pause_of(session, course.id)
    audit.record(session, actor="system", action="review_pause_opened", entity="ReviewPause",
                 entity_id=pause.id, site_id=participant.site_id, participant_id=participant.id, at=now,
                 after={"course_id": course.id, "cause": cause, "flag_key": flag_key})
    return pause


def open_pause_of(session: Session, course_id: int) -> ReviewPause | None:
    return session.exec(select(ReviewPause).where(ReviewPause.course_id == course_id,
                                                  ReviewPause.closed_at.is_(None))).first()


def open_pauses_of_participants(session: Session, participant_ids) -> dict[int, ReviewPause]:
    """Participant id → their open pause, for the flag queue (one query)."""
    ids = sorted({pid for pid in participant_ids if pid is not None})
    if not ids:
        return {}
    rows = session.exec(select(ReviewPause).where(ReviewPause.participant_id.in_(ids),
                                                  ReviewPause.closed_at.is_(None))).all()
    return {pause.participant_id: pause for pause in rows}


def close_pause(session: Session, *, pause: ReviewPause, staff_id: int, kind: str, now: datetime,
                note: str | None = None, decision_id: int | None = None) -> ReviewPause:
    """Close an open pause, once: a conditional UPDATE, so two staff closing it at once cannot both
    succeed. `kind` is 'continue' (a note is required) or 'decision' (the signed decision's id)."""
    note = (note or "").strip()
    if kind == "continue" and not note:
        raise PauseError("note_required")
    if kind not in ("continue", "decision"):
        raise PauseError("bad_kind")
    closed = session.connection().execute(
        update(ReviewPause).where(ReviewPause.id == pause.id, ReviewPause.closed_at.is_(None))
        .values(closed_at=now, closed_by=staff_id, close_kind=kind, close_note=note[:500] or None,
                decision_id=decision_id)
        .returning(ReviewPause.id)).first()
    if closed is None:
        raise PauseError("already_closed")
    session.refresh(pause)
    audit.record(session, actor=f"staff:{staff_id}", action="review_pause_closed", entity="ReviewPause",
                 entity_id=pause.id, site_id=pause.site_id, participant_id=pause.participant_id, at=now,
                 reason=pause.close_note, before={"closed_at": None},
                 after={"course_id": pause.course_id, "close_kind": kind, "decision_id": decision_id})
    return pause
