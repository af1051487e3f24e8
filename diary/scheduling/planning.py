"""Planning jobs: participant reminders, missed-dose and overdue-blood-count flags.

Each job reads every running course with a fixed number of queries (not one per participant),
asks diary/reminders.py what is due at `now`, and writes what is missing under unique keys,
so a restart, a crash, a clock jump or two schedulers at once lose nothing and double nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session, select

from diary import course_record, reminders
from diary.course_record import CourseRecord
from diary.messaging import texts
from diary.messaging.gateway import sms_text
from diary.messaging.outbox import template_columns
from diary.models import Course, Flag, Message, Participant, Site, course_not_voided
from diary.reminders import Due
from diary.scheduling.context import Jobs
from diary.services.course_records import load_records
from diary.services.flag_details import FlagDetail, detail
from diary.services.flags import raise_flag

log = logging.getLogger(__name__)
# SQLite allows 32,766 bound parameters per statement; PostgreSQL 65,535.
CHUNK = 5000


@dataclass(frozen=True)
class Running:
    """One running course's record and how to reach its participant."""

    record: CourseRecord
    language: str
    sms_opt_in: bool
    phone_enc: bytes

    participant_id = property(lambda self: self.record.participant_id)
    site_id = property(lambda self: self.record.site_id)


def load_running(session: Session, jobs: Jobs, now: datetime) -> list[Running]:
    """Courses of active participants that run now or ended recently: the course-record loader's
    fixed number of queries, and one more for how to reach each participant."""
    low, high = reminders.course_window(now, jobs.cfg)
    window = (Course.start_date >= low, Course.start_date <= high, Participant.status == "active",
              course_not_voided())
    records = load_records(session, *window, log_details=False)
    contact = {pid: row for pid, *row in session.exec(
        select(Participant.id, Participant.language, Participant.sms_opt_in, Participant.phone_enc)
        .where(Participant.id.in_(select(Course.participant_id).join(Participant).where(*window))))}
    return [Running(record, *contact[record.participant_id]) for record in records.values()]


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
        mg = course_record.doses(course.record, jobs.cfg)[due.day - 1]
        # A change the participant has not acknowledged (or that starts today) is said in the reminder.
        text = texts.dose_reminder_changed if course_record.reminder_states_change(course.record, due.day) \
            else texts.dose_reminder
        return text(lang, mg=mg, tablets=_tablets(mg, jobs), show_dose=jobs.show_dose)
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
                  for due in reminders.due_reminders(course.record, jobs.cfg, now)]
    if not candidates:
        return 0
    known = existing(session, Message.dedupe_key, [due.dedupe_key for _, due in candidates])
    phones = dict(session.exec(select(Site.id, Site.phone)).all())
    rows = []
    bodies: dict[tuple, str] = {}  # thousands of participants share a handful of texts
    for course, due in candidates:
        if due.dedupe_key in known:
            continue
        text_key = (due.kind, course.language, course_record.doses(course.record, jobs.cfg)[due.day - 1],
                    course.site_id, due.kind == reminders.DOSE
                    and course_record.reminder_states_change(course.record, due.day))
        if text_key not in bodies:
            bodies[text_key] = reminder_text(due, course, jobs, phones[course.site_id])
        rows.append({
            "dedupe_key": due.dedupe_key, "kind": due.kind, "site_id": course.site_id,
            "participant_id": course.participant_id, "course_id": due.course_id,
            "course_day": due.day, "to_enc": course.phone_enc,
            "body": sms_text(bodies[text_key]), **template_columns(bodies[text_key]),
            "status": "queued", "not_before": due.not_before, "expires_at": due.expires_at,
            "attempts": 0, "created_at": now,
        })
    return insert_ignoring_duplicates(session, rows)


def raise_dose_flags(session: Session, jobs: Jobs, now: datetime,
                     running: list[Running] | None = None) -> int:
    """Missed doses at the cutoff and blood counts overdue after a draw day: one flag each."""
    running = load_running(session, jobs, now) if running is None else running
    wanted: dict[str, tuple[str, Running, FlagDetail]] = {}
    for course in running:
        cid = course.record.course_id
        for day in course_record.missed_days(course.record, jobs.cfg, now):
            wanted[f"missed:{cid}:{day}"] = ("missed_dose", course, detail("missed_dose", day=day))
        for day in course_record.overdue_draws(course.record, jobs.cfg, now, jobs.lab_overdue_hours):
            wanted[f"overdue_lab:{cid}:{day}"] = ("overdue_lab", course, detail("overdue_lab", day=day))
    if not wanted:
        return 0
    known = existing(session, Flag.key, list(wanted))
    raised = 0
    for key, (kind, course, text) in wanted.items():
        if key in known:
            continue
        if raise_flag(session, key=key, kind=kind, site_id=course.site_id, detail=text, now=now,
                      participant_id=course.participant_id):
            raised += 1
    return raised
