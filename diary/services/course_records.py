"""The one loader of course records (diary/course_record.py), by id or in bulk.

Six queries whatever the number of courses: courses with their participants, then decisions,
current dose logs, current blood counts, current symptom reports and review pauses, each bounded
by the same sub-select. Rows are read as plain tuples (no ORM identity map): the adherence grid
loads 8,000 courses at once. `is_current` is the SQL form of the "current row" rule.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import time

from sqlalchemy import exists, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from diary.course_record import CourseRecord, LabFact, LogFact, PauseFact, SymptomFact
from diary.models import Course, DoseDecision, DoseLog, LabResult, Participant, ReviewPause, Site, SymptomReport


def is_current(model):
    """SQL: the row nothing supersedes (the Python form is course_record.current)."""
    newer = aliased(model)
    return ~exists().where(newer.supersedes_id == model.id)


def _reminder_time(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        return time(8, 0)


def load_records(session: Session, *where) -> dict[int, CourseRecord]:
    """Course id → record, for the courses matching `where` (criteria on Course and Participant)."""
    session.flush()  # Core reads below do not autoflush
    conn = session.connection()
    scope = select(Course.id).join(Participant, Participant.id == Course.participant_id).where(*where)
    ids = scope.scalar_subquery()
    courses = conn.execute(
        select(Course.id, Course.participant_id, Participant.site_id, Course.cycle_number, Course.start_date,
               Course.starting_dose_mg, Participant.timezone, Participant.status, Participant.ended_at,
               Participant.reminder_time, Participant.study_number, Participant.cohort, Site.code)
        .join(Participant, Participant.id == Course.participant_id).join(Site, Site.id == Participant.site_id)
        .where(*where)).all()
    if not courses:
        return {}
    decisions: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for course_id, effective_day, mg in conn.execute(
            select(DoseDecision.course_id, DoseDecision.effective_day, DoseDecision.dose_mg)
            .where(DoseDecision.course_id.in_(ids)).order_by(DoseDecision.id)):
        decisions[course_id].append((effective_day, mg))
    logs: dict[int, dict[int, LogFact]] = defaultdict(dict)
    for course_id, *fact in conn.execute(
            select(DoseLog.course_id, DoseLog.id, DoseLog.course_day, DoseLog.outcome, DoseLog.taken_at,
                   DoseLog.source, DoseLog.received_at, DoseLog.fasting, DoseLog.reason)
            .where(DoseLog.course_id.in_(ids), is_current(DoseLog), DoseLog.outcome != "retracted")):
        logs[course_id][fact[1]] = LogFact(*fact)
    labs: dict[int, list[LabFact]] = defaultdict(list)
    for course_id, *fact in conn.execute(
            select(LabResult.course_id, LabResult.id, LabResult.course_day, LabResult.plt)
            .where(LabResult.course_id.in_(ids), is_current(LabResult)).order_by(LabResult.id)):
        labs[course_id].append(LabFact(*fact))
    reports: dict[int, list[SymptomFact]] = defaultdict(list)
    for course_id, *fact in conn.execute(
            select(SymptomReport.course_id, SymptomReport.id, SymptomReport.danger, SymptomReport.received_at)
            .where(SymptomReport.course_id.in_(ids), is_current(SymptomReport)).order_by(SymptomReport.id)):
        reports[course_id].append(SymptomFact(*fact))
    pauses: dict[int, list[PauseFact]] = defaultdict(list)
    for course_id, *fact in conn.execute(
            select(ReviewPause.course_id, ReviewPause.id, ReviewPause.opened_at, ReviewPause.closed_at,
                   ReviewPause.cause).where(ReviewPause.course_id.in_(ids)).order_by(ReviewPause.id)):
        pauses[course_id].append(PauseFact(*fact))
    return {
        cid: CourseRecord(
            course_id=cid, participant_id=pid, site_id=site_id, cycle=cycle, day1=day1, starting_dose_mg=mg,
            tz=tz, participant_status=status, ended_at=ended_at, reminder_time=_reminder_time(reminder),
            study_number=number, cohort=cohort, site_code=site_code,
            decisions=tuple(decisions.get(cid, ())), logs=logs.get(cid), labs=tuple(labs.get(cid, ())),
            symptoms=tuple(reports.get(cid, ())), pauses=tuple(pauses.get(cid, ())))
        for cid, pid, site_id, cycle, day1, mg, tz, status, ended_at, reminder, number, cohort, site_code in courses
    }


def load_record(session: Session, course_id: int) -> CourseRecord | None:
    """The record of one course (the same six queries), or None."""
    return load_records(session, Course.id == course_id).get(course_id)
