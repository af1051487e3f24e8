"""Planning jobs: participant reminders, missed-dose and overdue-blood-count flags.

Each job reads every running course with a fixed number of queries (not one per participant),
asks diary/reminders.py what is due at `now`, and writes what is missing under unique keys,
so a restart, a crash, a clock jump or two schedulers at once lose nothing and double nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session, select

from diary import reminders
from diary.messaging import texts
from diary.messaging.gateway import sms_text
from diary.models import Course, DoseDecision, DoseLog, Flag, LabResult, Message, Participant, Site, course_not_voided
from diary.reminders import CourseState, Due
from diary.scheduling.context import Jobs
from diary.services.flags import raise_flag

log = logging.getLogger(__name__)
# SQLite allows 32,766 bound parameters per statement; PostgreSQL 65,535.
CHUNK = 5000


@dataclass(frozen=True)
class Running:
    """One running course and the participant it belongs to."""

    state: CourseState
    participant_id: int
    site_id: int
    language: str
    sms_opt_in: bool
    phone_enc: bytes
    starting_dose_mg: float


def load_running(session: Session, jobs: Jobs, now: datetime) -> list[Running]:
    """Courses of active participants that run now or ended recently: four queries in all."""
    low, high = reminders.course_window(now, jobs.cfg)
    window = (Course.start_date >= low, Course.start_date <= high, Participant.status == "active",
              course_not_voided())

    def by_course(stmt):
        grouped = defaultdict(list)
        for row in session.exec(stmt.join(Course).join(Participant, Participant.id == Course.participant_id)
                                .where(*window)):
            grouped[row[0]].append(row[1:])
        return grouped

    decisions = by_course(select(DoseDecision.course_id, DoseDecision.id, DoseDecision.effective_day,
                                 DoseDecision.dose_mg))
    logs = by_course(select(DoseLog.course_id, DoseLog.id, DoseLog.course_day, DoseLog.outcome,
                            DoseLog.supersedes_id))
    labs = by_course(select(LabResult.course_id, LabResult.course_day))
    rows = session.exec(
        select(Course.id, Course.start_date, Course.starting_dose_mg, Course.last_day, Participant.id,
               Participant.site_id,
               Participant.timezone, Participant.reminder_time, Participant.language,
               Participant.sms_opt_in, Participant.phone_enc)
        .join(Participant, Participant.id == Course.participant_id).where(*window)
    ).all()
    length = jobs.cfg.course_length_days
    running = []
    for course_id, day1, start_mg, last_day, pid, site_id, tz, reminder_time, language, opt_in, phone_enc in rows:
        state = CourseState(
            course_id=course_id, day1=day1, tz=tz,
            reminder_time=reminders.parse_hhmm(reminder_time),
            doses=reminders.doses_by_day(start_mg, decisions.get(course_id, ()), length, last_day),
            logged=reminders.current_log_days(logs.get(course_id, ())),
            drawn=frozenset(day for (day,) in labs.get(course_id, ())),
        )
        running.append(Running(state, pid, site_id, language, opt_in, phone_enc, start_mg))
    return running


def existing(session: Session, column, keys: list[str]) -> set[str]:
    """Which of `keys` are already in the unique `column` (one query per 5,000 keys)."""
    found: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        found.update(session.exec(select(column).where(column.in_(keys[start:start + CHUNK]))).all())
    return found


def insert_ignoring_duplicates(session: Session, rows: list[dict]) -> int:
    """Insert outbox rows; a key another scheduler wrote a moment ago is skipped, not an error."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - the app supports these two
        dialect_insert = insert
    stmt = dialect_insert(Message.__table__)
    if dialect in ("postgresql", "sqlite"):
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    # executemany, not one giant VALUES list: SQLAlchemy batches it ("insertmanyvalues") without
    # compiling a bind parameter per value, which cost seconds for 10,000 rows.
    session.connection().execute(stmt, rows)
    return len(rows)


def reminder_text(due: Due, course: Running, jobs: Jobs, site_phone: str) -> str:
    lang = course.language
    if due.kind == reminders.DOSE:
        mg = course.state.doses[due.day - 1]
        return texts.dose_reminder(lang, mg=mg, tablets=_tablets(mg, jobs), show_dose=jobs.show_dose)
    if due.kind == reminders.FOLLOWUP:
        return texts.dose_followup(lang)
    if due.kind == reminders.DRAW_EVENING:
        return texts.draw_evening(lang, phone=site_phone)
    return texts.draw_morning(lang, phone=site_phone)


def _tablets(mg: float, jobs: Jobs) -> int:
    return round(mg / jobs.cfg.tablet_strength_mg)


def plan_reminders(session: Session, jobs: Jobs, now: datetime,
                   running: list[Running] | None = None) -> int:
    """Queue every participant reminder due at `now` that is not queued yet; returns how many."""
    running = load_running(session, jobs, now) if running is None else running
    candidates = [(course, due) for course in running if course.sms_opt_in
                  for due in reminders.due_reminders(course.state, jobs.cfg, now)]
    if not candidates:
        return 0
    known = existing(session, Message.dedupe_key, [due.dedupe_key for _, due in candidates])
    phones = dict(session.exec(select(Site.id, Site.phone)).all())
    rows = []
    bodies: dict[tuple, str] = {}  # thousands of participants share a handful of texts
    for course, due in candidates:
        if due.dedupe_key in known:
            continue
        text_key = (due.kind, course.language, course.state.doses[due.day - 1], course.site_id)
        if text_key not in bodies:
            bodies[text_key] = sms_text(reminder_text(due, course, jobs, phones[course.site_id]))
        rows.append({
            "dedupe_key": due.dedupe_key, "kind": due.kind, "site_id": course.site_id,
            "participant_id": course.participant_id, "course_id": due.course_id,
            "course_day": due.day, "to_enc": course.phone_enc,
            "body": bodies[text_key],
            "status": "queued", "not_before": due.not_before, "expires_at": due.expires_at,
            "attempts": 0, "created_at": now,
        })
    return insert_ignoring_duplicates(session, rows)


def raise_dose_flags(session: Session, jobs: Jobs, now: datetime,
                     running: list[Running] | None = None) -> int:
    """Missed doses at the cutoff and blood counts overdue after a draw day: one flag each."""
    running = load_running(session, jobs, now) if running is None else running
    wanted: dict[str, tuple[str, Running, str]] = {}
    for course in running:
        cid = course.state.course_id
        for day in reminders.missed_days(course.state, jobs.cfg, now):
            wanted[f"missed:{cid}:{day}"] = ("missed_dose", course, f"Dose of course day {day} not logged "
                                             "by the cutoff")
        for day in reminders.overdue_draws(course.state, jobs.cfg, now, jobs.lab_overdue_hours):
            wanted[f"overdue_lab:{cid}:{day}"] = ("overdue_lab", course, f"Blood count of course day {day} "
                                                  "not entered")
    if not wanted:
        return 0
    known = existing(session, Flag.key, list(wanted))
    raised = 0
    for key, (kind, course, detail) in wanted.items():
        if key in known:
            continue
        if raise_flag(session, key=key, kind=kind, site_id=course.site_id, detail=detail, now=now,
                      participant_id=course.participant_id):
            raised += 1
    return raised
