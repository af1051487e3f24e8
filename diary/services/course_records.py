"""The one loader of course records (diary/course_record.py), by id or in bulk.

Six queries whatever the number of courses: courses with their participants, then decisions (with
the participant's acknowledgement of each), current dose logs, current blood counts, current
symptom reports and review pauses, each bounded by the same sub-select. Rows are read as plain
tuples (no ORM identity map): the adherence grid loads 8,000 courses at once. `is_current` is the
SQL form of the "current row" rule.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import time

from sqlalchemy import String, case, cast, exists, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from diary.course_record import CourseRecord, DecisionFact, LabFact, LogFact, PauseFact, SymptomFact
from diary.models import (
    Course,
    DoseChangeAck,
    DoseDecision,
    DoseLog,
    LabResult,
    Participant,
    ReviewPause,
    Site,
    SymptomReport,
)

_OUTCOME_CODES = {"t": "taken", "n": "not_taken"}
_NONE: dict[int, str] = {}


def is_current(model):
    """SQL: the row nothing supersedes (the Python form is course_record.current)."""
    newer = aliased(model)
    return ~exists().where(newer.supersedes_id == model.id)


def _rows(conn, statement):
    """The rows of `statement` in batches: each batch is freed before the next arrives, so tens of
    thousands of rows never live at once (the cyclic collector would walk them again and again)."""
    for batch in conn.execute(statement).partitions(1000):
        yield from batch


def _reminder_time(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        return time(8, 0)


def load_records(session: Session, *where, log_details: bool = True) -> dict[int, CourseRecord]:
    """Course id → record, for the courses matching `where` (criteria on Course and Participant).

    `log_details=False` loads only each current log's outcome (what a day's status depends on), not
    what a page shows of it (times, source, fasting, reason): for thousands of courses, fetching
    ~100,000 log rows would be most of the cost."""
    session.flush()  # Core reads below do not autoflush
    conn = session.connection()
    scope = select(Course.id).join(Participant, Participant.id == Course.participant_id).where(*where)
    ids = scope.scalar_subquery()
    courses = conn.execute(
        select(Course.id, Course.participant_id, Participant.site_id, Course.cycle_number, Course.start_date,
               Course.starting_dose_mg, Participant.timezone, Participant.status, Participant.ended_at,
               Participant.reminder_time, Participant.study_number, Participant.cohort, Site.code, Course.last_day,
               Site.quiet_start, Site.quiet_end)
        .join(Participant, Participant.id == Course.participant_id).join(Site, Site.id == Participant.site_id)
        .where(*where)).all()
    if not courses:
        return {}
    decisions: dict[int, list[tuple[int, float]]] = defaultdict(list)
    signed: dict[int, list[DecisionFact]] = defaultdict(list)
    for course_id, *fact in _rows(conn,
            select(DoseDecision.course_id, DoseDecision.id, DoseDecision.effective_day, DoseDecision.dose_mg,
                   DoseDecision.action, DoseChangeAck.acknowledged_at)
            .outerjoin(DoseChangeAck, DoseChangeAck.decision_id == DoseDecision.id)
            .where(DoseDecision.course_id.in_(ids)).order_by(DoseDecision.id)):
        decision = DecisionFact(*fact)
        decisions[course_id].append((decision.day, decision.dose_mg))
        signed[course_id].append(decision)
    current_logs = (DoseLog.course_id.in_(ids), is_current(DoseLog), DoseLog.outcome != "retracted")
    logs: dict[int, dict[int, LogFact]] = defaultdict(dict)
    outcomes: dict[int, dict[int, str]] = {}
    if log_details:
        for course_id, *fact in _rows(conn,
                select(DoseLog.course_id, DoseLog.id, DoseLog.course_day, DoseLog.outcome, DoseLog.taken_at,
                       DoseLog.source, DoseLog.received_at, DoseLog.fasting, DoseLog.reason)
                .where(*current_logs)):
            logs[course_id][fact[1]] = LogFact(*fact)
        outcomes = {cid: {day: log.outcome for day, log in by_day.items()} for cid, by_day in logs.items()}
    else:
        # One row per course ("3t,4n,…"), not one per log: the grid's 8,000 courses have ~90,000.
        code = cast(DoseLog.course_day, String) + case((DoseLog.outcome == "taken", "t"), else_="n")
        aggregate = func.string_agg(code, ",") if conn.dialect.name == "postgresql" else func.group_concat(code, ",")
        for course_id, packed in _rows(conn,
                select(DoseLog.course_id, aggregate).where(*current_logs).group_by(DoseLog.course_id)):
            outcomes[course_id] = {int(item[:-1]): _OUTCOME_CODES[item[-1]] for item in packed.split(",")}
    labs: dict[int, list[LabFact]] = defaultdict(list)
    for course_id, *fact in _rows(conn,
            select(LabResult.course_id, LabResult.id, LabResult.course_day, LabResult.plt)
            .where(LabResult.course_id.in_(ids), is_current(LabResult)).order_by(LabResult.id)):
        labs[course_id].append(LabFact(*fact))
    reports: dict[int, list[SymptomFact]] = defaultdict(list)
    for course_id, *fact in _rows(conn,
            select(SymptomReport.course_id, SymptomReport.id, SymptomReport.danger, SymptomReport.received_at)
            .where(SymptomReport.course_id.in_(ids), is_current(SymptomReport)).order_by(SymptomReport.id)):
        reports[course_id].append(SymptomFact(*fact))
    pauses: dict[int, list[PauseFact]] = defaultdict(list)
    for course_id, *fact in _rows(conn,
            select(ReviewPause.course_id, ReviewPause.id, ReviewPause.opened_at, ReviewPause.closed_at,
                   ReviewPause.cause).where(ReviewPause.course_id.in_(ids)).order_by(ReviewPause.id)):
        pauses[course_id].append(PauseFact(*fact))
    return {
        cid: CourseRecord(
            course_id=cid, participant_id=pid, site_id=site_id, cycle=cycle, day1=day1, starting_dose_mg=mg,
            tz=tz, participant_status=status, ended_at=ended_at, reminder_time=_reminder_time(reminder),
            study_number=number, cohort=cohort, site_code=site_code,
            decisions=tuple(decisions.get(cid, ())), signed=tuple(signed.get(cid, ())),
            outcomes=outcomes.get(cid, _NONE), logs=logs.get(cid),
            labs=tuple(labs.get(cid, ())),
            symptoms=tuple(reports.get(cid, ())), pauses=tuple(pauses.get(cid, ())), last_day=last_day,
            quiet_start=quiet_start, quiet_end=quiet_end)
        for (cid, pid, site_id, cycle, day1, mg, tz, status, ended_at, reminder, number, cohort, site_code,
             last_day, quiet_start, quiet_end) in courses
    }


def load_record(session: Session, course_id: int) -> CourseRecord | None:
    """The record of one course (the same six queries), or None."""
    return load_records(session, Course.id == course_id).get(course_id)
