"""Fixing a course that was entered wrongly or stopped early: signed by an investigator, audited.

A voided course (entered in error) stays in the database, the audit trail and the export, and takes
part in nothing else: `models.course_not_voided()` is the one predicate every course query applies.
A course ended early keeps its days up to `Course.last_day`; the days after it are neither due nor
missed (`study.course_decisions_with_end`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, select

from diary import audit, study
from diary.models import Course, Message, Participant, StaffUser, course_not_voided
from diary.services import FieldError
from diary.study import StudyConfig


class CourseError(FieldError):
    """A void or early end refused; `field` names the input at fault."""


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise CourseError("reason", "required")
    return reason[:500]


def _drop_queued(session: Session, course: Course, after_day: int, why: str) -> int:
    """Queued reminders about days that will no longer be dosed are not sent."""
    rows = session.exec(select(Message).where(Message.course_id == course.id, Message.status == "queued",
                                              Message.course_day > after_day)).all()
    for message in rows:
        message.status = "dropped"
        message.last_error = why
        session.add(message)
    return len(rows)


def void_course(session: Session, *, course: Course, reason: str, signer: StaffUser, now: datetime) -> Course:
    """Mark a course entered in error (the signer re-authenticated by the caller). Its records stay."""
    reason = _reason(reason)
    # Once: a conditional UPDATE, so two investigators voiding at the same moment cannot both do it.
    session.flush()
    done = session.connection().execute(
        update(Course).where(Course.id == course.id, Course.voided_at.is_(None))
        .values(voided_at=now, voided_by=signer.id, void_reason=reason).returning(Course.id)).first()
    session.refresh(course)
    if done is None:
        raise CourseError("course", "already_voided")
    dropped = _drop_queued(session, course, 0, "course voided")
    session.flush()
    participant = session.get(Participant, course.participant_id)
    audit.record(session, actor=f"staff:{signer.id}", action="course_voided", entity="Course",
                 entity_id=course.id, site_id=participant.site_id, participant_id=participant.id, at=now,
                 reason=reason, before={"voided_at": None},
                 after={"voided_at": now, "cycle_number": course.cycle_number,
                        "infusion_date": course.infusion_date, "dropped_messages": dropped})
    return course


def end_course_early(session: Session, cfg: StudyConfig, *, course: Course, last_day: int, reason: str,
                     signer: StaffUser, now: datetime) -> Course:
    """Shorten a course: `last_day` is the last day dosed; later days are neither due nor missed."""
    reason = _reason(reason)
    if course.voided_at is not None:
        raise CourseError("course", "voided")
    current_last = course.last_day or cfg.course_length_days
    if not 1 <= last_day < current_last:
        raise CourseError("last_day", "outside_course")
    before = course.last_day
    # A conditional UPDATE: a course only ever gets shorter, and never once voided, however many
    # investigators sign at the same moment (the checks above only give the clear message).
    session.flush()
    done = session.connection().execute(
        update(Course).where(Course.id == course.id, Course.voided_at.is_(None),
                             func.coalesce(Course.last_day, cfg.course_length_days) > last_day)
        .values(last_day=last_day, ended_early_by=signer.id, end_early_reason=reason, ended_early_at=now)
        .returning(Course.id)).first()
    session.refresh(course)
    if done is None:
        raise CourseError("course", "voided") if course.voided_at else CourseError("last_day", "outside_course")
    dropped = _drop_queued(session, course, last_day, "course ended early")
    session.flush()
    participant = session.get(Participant, course.participant_id)
    audit.record(session, actor=f"staff:{signer.id}", action="course_ended_early", entity="Course",
                 entity_id=course.id, site_id=participant.site_id, participant_id=participant.id, at=now,
                 reason=reason, before={"last_day": before},
                 after={"last_day": last_day, "dropped_messages": dropped})
    return course


def infusion_warnings(session: Session, cfg: StudyConfig, *, participant: Participant, infusion_date: date,
                      today: date) -> list[str]:
    """Why a new infusion date deserves a second look: 'far_from_today' (more than
    cfg.infusion_date_warn_days away) and 'inside_running_course' (during a course not voided)."""
    warnings = []
    if abs((infusion_date - today).days) > cfg.infusion_date_warn_days:
        warnings.append("far_from_today")
    courses = session.exec(select(Course).where(Course.participant_id == participant.id,
                                                course_not_voided())).all()
    for course in courses:
        last = course.start_date + timedelta(days=(course.last_day or cfg.course_length_days) - 1)
        if course.start_date <= infusion_date <= last:
            warnings.append("inside_running_course")
            break
    return warnings


def end_date(course: Course, cfg: StudyConfig) -> date:
    """The local date of the course's last dosed day (after an early end, that day)."""
    return study.date_of_day(course.start_date, course.last_day or cfg.course_length_days, cfg)
