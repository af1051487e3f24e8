"""Planning jobs: participant reminders, missed-dose and overdue-blood-count flags.

The running courses are read in batches of BATCH courses (`running_batches`), each with the
course-record loader's fixed number of queries (not one per participant), so a tick's memory is
that of one batch (and the list of course ids) however many participants there are. For each batch the
jobs ask diary/reminders.py and diary/course_record.py what is due at `now`, and write what is
missing under unique keys, so a restart, a crash, a clock jump or two schedulers at once lose
nothing and double nothing.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ARRAY, Column, MetaData, Table, any_, bindparam, func, insert
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
from diary.study import DoseStatus

log = logging.getLogger(__name__)
# SQLite allows 32,766 bound parameters per statement; PostgreSQL 65,535.
CHUNK = 5000
# Courses planned together: their records, reminders and outbox rows are in memory at once.
BATCH = 5000


@dataclass(frozen=True)
class Running:
    """One running course's record, how to reach its participant, and its days' statuses at the
    instant it was loaded for (course_record.day_statuses, worked out once for both jobs)."""

    record: CourseRecord
    language: str
    sms_opt_in: bool
    phone_enc: bytes
    statuses: list[DoseStatus]

    participant_id = property(lambda self: self.record.participant_id)
    site_id = property(lambda self: self.record.site_id)


def _window(jobs: Jobs, now: datetime) -> tuple:
    """Courses of active participants that run now or ended recently (SQL criteria)."""
    low, high = reminders.course_window(now, jobs.cfg)
    return (Course.start_date >= low, Course.start_date <= high, Participant.status == "active",
            course_not_voided())


def load_running(session: Session, jobs: Jobs, now: datetime, *where) -> list[Running]:
    """Courses of active participants that run now or ended recently (and match `where`), as of
    `now`: the course-record loader's fixed number of queries, and one more for how to reach each
    participant."""
    window = (*_window(jobs, now), *where)
    records = load_records(session, *window, log_details=False)
    contact = {pid: row for pid, *row in session.exec(
        select(Participant.id, Participant.language, Participant.sms_opt_in, Participant.phone_enc)
        .where(Participant.id.in_(select(Course.participant_id).join(Participant).where(*window))))}
    statuses, cfg = course_record.day_statuses, jobs.cfg
    return [Running(record, *contact[record.participant_id], statuses(record, cfg, now))
            for record in records.values()]


def running_batches(session: Session, jobs: Jobs, now: datetime,
                    batch: int | None = None) -> Iterator[list[Running]]:
    """`load_running` in batches of at most `batch` (BATCH) courses, by ranges of course id: one
    query for the ids, then the loader's queries per batch. Only one batch is in memory at a time.
    A course that starts or stops matching between the two is planned for on the next tick."""
    batch = batch or BATCH
    # Two arrays of machine integers, not a list of 50,000 rows: the cyclic collector walks every
    # row of a list at each full collection of the tick (several at 50,000 participants), an array never.
    courses, people = array("q"), array("q")
    for course_id, participant_id in session.exec(
            select(Course.id, Course.participant_id).join(Participant, Participant.id == Course.participant_id)
            .where(*_window(jobs, now)).order_by(Course.id)):
        courses.append(course_id)
        people.append(participant_id)
    for start in range(0, len(courses), batch):
        end = min(start + batch, len(courses)) - 1
        # The participants' id range too: it changes no result, but lets PostgreSQL read them by index
        # instead of scanning every participant for every batch.
        chunk = people[start:end + 1]
        yield load_running(session, jobs, now, Course.id >= courses[start], Course.id <= courses[end],
                           Participant.id >= min(chunk), Participant.id <= max(chunk))


def existing(session: Session, column, keys: list[str]) -> set[str]:
    """Which of `keys` are already in the unique `column` (one query per 5,000 keys)."""
    found: set[str] = set()
    postgresql = session.connection().dialect.name == "postgresql"
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        # PostgreSQL: the keys as one array parameter. An IN list of 5,000 parameters costs more to
        # render, send and parse than the index look-ups themselves (the plan is the same).
        match = column == any_(bindparam("keys", chunk, type_=ARRAY(column.type))) if postgresql \
            else column.in_(chunk)
        found.update(session.exec(select(column).where(match)).all())
    return found


# The outbox columns a planned reminder fills (the rest keep their defaults).
REMINDER_COLUMNS = ("dedupe_key", "kind", "site_id", "participant_id", "course_id", "course_day", "to_enc", "body",
                    "template", "template_params", "language", "status", "not_before", "expires_at", "attempts",
                    "created_at")


def insert_ignoring_duplicates(session: Session, rows: list[dict]) -> int:
    """Insert outbox rows (REMINDER_COLUMNS); a key another scheduler wrote a moment ago is skipped,
    not an error (ON CONFLICT DO NOTHING on the unique dedupe_key). Returns how many were inserted.

    Thousands of rows at once (a reminder time shared by every participant) are written in bulk:
    on PostgreSQL COPY into a temporary table and one INSERT … SELECT from it, on SQLite one
    executemany. Either is several times faster than SQLAlchemy's executemany, which on
    PostgreSQL sends one INSERT per row."""
    if not rows:
        return 0
    conn = session.connection()
    dialect = conn.dialect
    table = Message.__table__
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        # The outbox's column types, none of its constraints: those are checked by the INSERT.
        planned = Table("planned_message", MetaData(), *(Column(name, table.c[name].type) for name in REMINDER_COLUMNS),
                        prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
        planned.create(conn)
        names = ", ".join(dialect.identifier_preparer.quote(name) for name in REMINDER_COLUMNS)
        # Binary COPY (each value sent as its column's type, not formatted as text): about twice as
        # fast. It needs the columns' type oids, which the empty table describes.
        oids = [column.type_code for column in conn.execute(select(*planned.c).limit(0)).cursor.description]
        with conn.connection.cursor().copy(f"COPY planned_message ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(oids)
            for values in _bound(rows, REMINDER_COLUMNS, table, dialect):
                copy.write_row(values)
        inserted = conn.execute(pg_insert(table).from_select(REMINDER_COLUMNS, select(*planned.c))
                                .on_conflict_do_nothing(index_elements=["dedupe_key"]),
                                execution_options={"preserve_rowcount": True}).rowcount
        planned.drop(conn)
        return inserted
    if dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        # One executemany of the compiled statement, its positional parameters in its own order.
        compiled = sqlite_insert(table).values({name: bindparam(name) for name in REMINDER_COLUMNS}) \
            .on_conflict_do_nothing(index_elements=["dedupe_key"]).compile(dialect=dialect)
        before = conn.execute(select(func.total_changes())).scalar()
        conn.exec_driver_sql(str(compiled), _bound(rows, tuple(compiled.positiontup), table, dialect))
        return conn.execute(select(func.total_changes())).scalar() - before
    # pragma: no cover - the app supports these two
    conn.execute(insert(table), rows)
    return len(rows)


def _bound(rows: list[dict], order: tuple[str, ...], table: Table, dialect) -> list[tuple]:
    """The rows' values in `order`, through each column's own bind processor (UTC instants, JSON),
    as SQLAlchemy would send them. Rows share instants and parameters: each object is processed once."""
    processors = [(index, processor) for index, name in enumerate(order)
                  if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))]
    done: dict[tuple[int, int], object] = {}
    bound = []
    for row in rows:
        values = [row.get(name) for name in order]
        for index, processor in processors:
            value = values[index]
            if value is not None:
                key = (index, id(value))  # the rows keep every value alive: ids are not reused
                if key not in done:
                    done[key] = processor(value)
                values[index] = done[key]
        bound.append(tuple(values))
    return bound


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
    return insert_ignoring_duplicates(session, reminder_rows(session, jobs, now, running))


def reminder_rows(session: Session, jobs: Jobs, now: datetime, running: list[Running]) -> list[dict]:
    """The outbox rows (REMINDER_COLUMNS) of the reminders of `running` due at `now` and not queued yet."""
    candidates = [(course, due, due.dedupe_key) for course in running if course.sms_opt_in
                  for due in reminders.due_reminders(course.record, jobs.cfg, now, course.statuses)]
    if not candidates:
        return []
    known = existing(session, Message.dedupe_key, [key for _, _, key in candidates])
    phones = dict(session.exec(select(Site.id, Site.phone)).all())
    rows = []
    bodies: dict[tuple, dict] = {}  # thousands of participants share a handful of texts
    for course, due, key in candidates:
        if key in known:
            continue
        record = course.record
        mg = course_record.doses(record, jobs.cfg)[due.day - 1]
        text_key = (due.kind, course.language, mg, course.site_id,
                    due.kind == reminders.DOSE and course_record.reminder_states_change(record, due.day))
        body = bodies.get(text_key)
        if body is None:
            text = reminder_text(due, course, jobs, phones[course.site_id])
            body = bodies[text_key] = {"body": sms_text(text), **template_columns(text)}
        rows.append({
            "dedupe_key": key, "kind": due.kind, "site_id": course.site_id,
            "participant_id": course.participant_id, "course_id": due.course_id,
            "course_day": due.day, "to_enc": course.phone_enc, **body,
            "status": "queued", "not_before": due.not_before, "expires_at": due.expires_at,
            "attempts": 0, "created_at": now,
        })
    return rows


class ReminderWriter:
    """Writes each batch's reminder rows (insert_ignoring_duplicates, then commit) for `_plan`.

    On PostgreSQL a worker thread writes them through a connection of its own while the planner
    reads and works out the next batch, so the server inserts one batch while the next is loaded
    (the insert is a third of a peak tick). At most one batch is in flight: `write` first waits
    for the previous one. On SQLite, which has one writer, the rows are written at once in the
    planner's session. Every row is still written under its unique key in a committed
    transaction of its own batch, as before."""

    def __init__(self, session: Session):
        self.session = session
        self.inserted = 0
        self.failed = False
        self._engine = session.get_bind()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="plan-writer") \
            if self._engine.dialect.name == "postgresql" else None
        self._pending: Future | None = None

    def write(self, rows: list[dict]) -> None:
        """Write `rows`, now or in the background; an error of this batch is raised here only
        when written at once (else logged and reported by `failed`)."""
        if self._pool is None:
            self.inserted += insert_ignoring_duplicates(self.session, rows)
            self.session.commit()
            return
        self._collect()
        if rows:
            self._pending = self._pool.submit(self._insert, rows)

    def _insert(self, rows: list[dict]) -> int:
        with Session(self._engine) as session:
            inserted = insert_ignoring_duplicates(session, rows)
            session.commit()
            return inserted

    def _collect(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            self.inserted += pending.result()
        except Exception:
            log.exception("scheduler job reminders failed")
            self.failed = True

    def __enter__(self) -> ReminderWriter:
        return self

    def __exit__(self, *_exc) -> None:
        self._collect()
        if self._pool is not None:
            self._pool.shutdown()


def raise_dose_flags(session: Session, jobs: Jobs, now: datetime,
                     running: list[Running] | None = None) -> int:
    """Missed doses at the cutoff and blood counts overdue after a draw day: one flag each."""
    running = load_running(session, jobs, now) if running is None else running
    wanted: dict[str, tuple[str, Running, FlagDetail]] = {}
    for course in running:
        cid = course.record.course_id
        for day in course_record.missed_days(course.record, jobs.cfg, now, course.statuses):
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
